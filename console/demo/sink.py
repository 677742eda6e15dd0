"""The demo's destination: a CRM, a help desk and a payment provider on 127.0.0.1:9000.

It behaves like real downstream systems do: mostly 200, now and then a 503, a 400 for data it
will not accept, and the payment provider confirms most refunds a little later through
Handoff's outcome callback (with the demo API token that `seed_demo` writes under .data/).

    python -m console.demo.sink [--port 9000] [--token-file .data/demo-api-token]
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONSOLE = "http://127.0.0.1:8000"
_seen: Counter[str] = Counter()
_seen_lock = threading.Lock()


def decide(path: str, webhook_id: str, body: dict) -> int:
    """The status a destination answers with, from what it was sent."""
    payload = body.get("payload") or {}
    with _seen_lock:
        _seen[webhook_id] += 1
        attempt = _seen[webhook_id]
    if path == "/crm/leads":
        if str(payload.get("email", "")).endswith("@invalid.example"):
            return 400  # the CRM refuses addresses it cannot mail: retrying will not help
        return 503 if random.random() < 0.12 else 200  # noqa: S311
    if path == "/helpdesk/tickets":
        # Flaky tickets fail twice, then go through: the retry schedule at work.
        return 503 if "[flaky]" in str(payload.get("subject", "")) and attempt <= 2 else 200
    if path == "/payments/refunds":
        return 200
    return 404


def confirm_refund(event_id: int, body: dict, token: str) -> None:
    """The payment provider's callback: most refunds settle, a few bounce."""
    payload = body.get("payload") or {}
    settled = not str(payload.get("order_id", "")).endswith("7")
    outcome = {
        "status": "achieved" if settled else "failed",
        "evidence": {"provider": "demo-pay", "order_id": payload.get("order_id"),
                     "settlement": "settled" if settled else "card_expired"},
    }  # fmt: skip
    request = urllib.request.Request(  # noqa: S310 (a fixed local URL)
        f"{CONSOLE}/api/v1/events/{event_id}/outcome",
        data=json.dumps(outcome).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
    except OSError as exc:
        print(f"sink: outcome callback for event {event_id} failed: {exc}", flush=True)


class Handler(BaseHTTPRequestHandler):
    token = ""

    def do_POST(self) -> None:  # noqa: N802 (the http.server API)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        webhook_id = self.headers.get("webhook-id", "")
        status = decide(self.path, webhook_id, body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"received": webhook_id, "status": status}).encode())
        order_id = str((body.get("payload") or {}).get("order_id", ""))
        # The provider never confirms some refunds: Handoff notices when the window passes.
        confirms = not order_id.endswith("3")
        if self.path == "/payments/refunds" and status == 200 and self.token and confirms:
            delay = random.uniform(2, 20)  # noqa: S311
            timer = threading.Timer(delay, confirm_refund, (body.get("event_id"), body, self.token))
            timer.daemon = True
            timer.start()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        print(f"sink: {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--token-file", type=Path, default=Path(".data/demo-api-token"))
    args = parser.parse_args()
    if args.token_file.exists():
        Handler.token = args.token_file.read_text().strip()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"sink: demo destination listening on http://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
