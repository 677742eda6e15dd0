"""The integrator's side of a fault run: events posted one a request at a bounded rate, each with
its own idempotency key, remembering what every request was answered."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Answer:
    key: str
    status: int  # 0: no HTTP answer at all (refused, reset, timed out)
    event_id: int | None
    duplicate: bool | None
    code: str | None  # the error code of a 4xx or 5xx
    at: float  # time.monotonic() when the answer came


@dataclass
class Load:
    """Posts to one workflow from a few threads, each on a keep-alive connection of its own."""

    port: int
    slug: str
    token: str
    threads: int = 4
    timeout: float = 15.0
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def post(self, conn: http.client.HTTPConnection, key: str, payload: dict[str, Any]) -> Answer:
        """One event; sent again on a fresh connection, up to twice, when no answer came (a
        kept-alive connection closed under it, or the timeout on a loaded machine), as an
        integrator would: the idempotency key makes it safe."""
        answer = self._post(conn, key, payload)
        for _ in range(2):
            if answer.status != 0:
                break
            answer = self._post(conn, key, payload)
        return answer

    def _post(self, conn: http.client.HTTPConnection, key: str, payload: dict[str, Any]) -> Answer:
        body = json.dumps(payload)
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        }
        try:
            conn.request("POST", f"/api/v1/workflows/{self.slug}/events", body, headers)
            response = conn.getresponse()
            data = json.loads(response.read() or b"null")
        except (OSError, http.client.HTTPException, ValueError):
            conn.close()  # reconnects on the next request
            return Answer(key, 0, None, None, None, time.monotonic())
        ok = 200 <= response.status < 300 and isinstance(data, dict)
        error = data.get("error") if isinstance(data, dict) else None
        return Answer(
            key,
            response.status,
            data.get("id") if ok else None,
            data.get("duplicate") if ok else None,
            error.get("code") if isinstance(error, dict) else None,
            time.monotonic(),
        )

    def start(self, items: Iterable[tuple[str, dict[str, Any]]], rate: float) -> Load:
        """Post every (key, payload) at about `rate` a second overall, in the background."""
        pending = iter(enumerate(items))
        pending_lock = threading.Lock()
        started = time.monotonic()

        def run() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            while True:
                with pending_lock:
                    nxt = next(pending, None)
                if nxt is None:
                    break
                index, (key, payload) = nxt
                wait = started + index / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                answer = self.post(conn, key, payload)
                with self._lock:
                    self.answers.append(answer)
            conn.close()

        self._workers = [threading.Thread(target=run, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def join(self) -> Load:
        for worker in self._workers:
            worker.join()
        return self

    def statuses(self) -> Counter[int]:
        with self._lock:
            return Counter(a.status for a in self.answers)

    def acknowledged(self) -> dict[str, int]:
        """Idempotency key -> event id, for every request answered 2xx."""
        with self._lock:
            return {
                a.key: a.event_id
                for a in self.answers
                if 200 <= a.status < 300 and a.event_id is not None
            }


def numbered(prefix: str, count: int) -> list[tuple[str, dict[str, Any]]]:
    """count distinct events, about 1 KB each, keyed prefix-0, prefix-1, ..."""
    filler = "x" * 850
    return [
        (
            f"{prefix}-{n}",
            {"email": f"lead{n}@example.com", "size": n % 1000, "n": n, "note": filler},
        )
        for n in range(count)
    ]
