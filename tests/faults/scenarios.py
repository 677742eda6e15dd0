"""The fault scenarios: each breaks one thing under load, puts it back, and counts.

Every scenario returns a Report: what it sent, what the server acknowledged, what was stored,
what finished (delivered and succeeded), what was lost, and any broken promise as a problem.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import signal
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from tests.faults.load import Load, numbered
from tests.faults.stack import Process, Stack, wait_for
from tests.support.sinks import Reply

SETTLED = ("succeeded", "failed", "needs_attention", "cancelled")


@dataclass
class Sizes:
    """The full run's numbers are the ones the fault tests promise; the short one is for CI."""

    kill_events: int
    kills: int
    kill_interval: float
    redis_outage: float
    postgres_outage: float
    beat_events: int
    storm_keys: int
    storm_repeats: int
    settle_seconds: float
    fuzz_examples: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(5000, 20, 5.0, 30.0, 10.0, 600, 100, 50, 300.0, 100)

    @classmethod
    def short(cls) -> Sizes:
        return cls(300, 3, 5.0, 5.0, 5.0, 100, 30, 10, 90.0, 10)


@dataclass
class Report:
    name: str
    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    finished: int = 0
    lost: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and self.lost == 0

    def print(self) -> None:
        verdict = "ok" if self.ok else "FAILED"
        print(
            f"{self.name:<34} sent {self.sent:>5}  acknowledged {self.acknowledged:>5}  "
            f"stored {self.stored:>5}  finished {self.finished:>5}  lost {self.lost:>3}  "
            f"{self.seconds:>5.0f} s  {verdict}",
            flush=True,
        )
        for note in self.notes:
            print(f"    {note}")
        for problem in self.problems:
            print(f"    PROBLEM: {problem}")


@dataclass(frozen=True)
class Stored:
    id: int
    key: str
    state: str
    attempts: int
    released: int  # claims of a lost worker taken back from this event


def stored_events(stack: Stack, slug: str) -> dict[int, Stored]:
    rows = stack.sql(
        """
        SELECT e.id, e.idempotency_key, e.state,
               (SELECT count(*) FROM workflows_attempt a WHERE a.event_id = e.id),
               (SELECT count(*) FROM workflows_decision d WHERE d.event_id = e.id
                  AND d.rule = 'processing' AND d.result->>'error_class' = 'WorkerLost')
        FROM workflows_event e JOIN workflows_workflow w ON w.id = e.workflow_id
        WHERE w.slug = %s
        """,
        slug,
    )
    return {row[0]: Stored(*row) for row in rows}


def stored_count(stack: Stack, slug: str) -> int:
    rows = stack.sql(
        "SELECT count(*) FROM workflows_event e JOIN workflows_workflow w "
        "ON w.id = e.workflow_id WHERE w.slug = %s",
        slug,
    )
    return int(rows[0][0])


def deliveries(stack: Stack, slug: str) -> Counter[int]:
    """How many times the sink was sent each event id (the webhook-id header)."""
    return Counter(int(r.headers["webhook-id"]) for r in stack.sink.requests(f"/{slug}"))


def settle(stack: Stack, slug: str, timeout: float) -> None:
    """Wait until every stored event of the workflow is in a settled state (or time is up)."""

    def settled() -> bool:
        rows = stack.sql(
            "SELECT count(*) FILTER (WHERE e.state <> ALL(%s)) FROM workflows_event e "
            "JOIN workflows_workflow w ON w.id = e.workflow_id WHERE w.slug = %s",
            list(SETTLED),
            slug,
        )
        return rows[0][0] == 0

    # When time is up, the counts that follow say what did not settle.
    with contextlib.suppress(TimeoutError):
        wait_for(settled, timeout, f"{slug}'s events to settle", interval=1.0)


def account(report: Report, stack: Stack, slug: str, load: Load) -> dict[int, Stored]:
    """Fill in the counts every scenario shares, and the losses they reveal."""
    events = stored_events(stack, slug)
    seen = deliveries(stack, slug)
    acknowledged = load.acknowledged()
    by_id = {event.id: event for event in events.values()}
    report.sent = len(load.answers)
    report.acknowledged = len(acknowledged)
    report.stored = len(events)
    report.finished = sum(1 for e in events.values() if e.state == "succeeded" and e.id in seen)
    missing = [key for key, event_id in acknowledged.items() if event_id not in by_id]
    wrong = [k for k, i in acknowledged.items() if i in by_id and by_id[i].key != k]
    unsettled = [e for e in events.values() if e.state not in SETTLED]
    unfinished = [e for e in events.values() if e.state != "succeeded"]
    unseen = [e for e in events.values() if e.state == "succeeded" and e.id not in seen]
    report.lost = len(missing) + len(wrong) + len(unfinished) + len(unseen)
    if missing:
        report.problems.append(f"{len(missing)} acknowledged events not stored, e.g. {missing[:3]}")
    if wrong:
        report.problems.append(f"{len(wrong)} acknowledged ids name another key's event")
    if unsettled:
        states = Counter(e.state for e in unsettled)
        report.problems.append(f"{len(unsettled)} events never settled: {dict(states)}")
    if unfinished and len(unfinished) != len(unsettled):
        states = Counter(e.state for e in unfinished if e.state in SETTLED)
        report.problems.append(f"events settled without succeeding: {dict(states)}")
    if unseen:
        report.problems.append(f"{len(unseen)} succeeded events the sink never saw")
    return events


def timed(run: Callable[[Stack, Sizes], Report]) -> Callable[[Stack, Sizes], Report]:
    def wrapper(stack: Stack, sizes: Sizes) -> Report:
        started = time.monotonic()
        report = run(stack, sizes)
        report.seconds = time.monotonic() - started
        return report

    wrapper.__name__ = run.__name__
    wrapper.__doc__ = run.__doc__
    return wrapper


# --- (a) workers killed --------------------------------------------------------------------


@timed
def worker_kills(stack: Stack, sizes: Sizes) -> Report:
    """Celery workers SIGKILLed again and again while events stream in."""
    slug = "faults-kill"
    report = Report(f"worker SIGKILL x{sizes.kills}")
    run_seconds = sizes.kills * sizes.kill_interval * 1.5
    # A destination that takes 20 ms to answer keeps the workers busy, so kills land mid-batch.
    stack.sink.script(f"/{slug}", *[Reply(200, delay=0.02)] * (2 * sizes.kill_events))
    load = Load(stack.port, slug, stack.tokens[slug])
    load.start(numbered(slug, sizes.kill_events), rate=sizes.kill_events / run_seconds)
    busy = 0
    for kill in range(sizes.kills):
        # A restarted worker takes seconds to boot (more on a loaded machine): wait for one
        # holding claimed events, so the kill lands mid-batch rather than on a booting worker.
        time.sleep(sizes.kill_interval / 2)
        worker = busy_worker(stack, within=30.0)
        busy += worker is not None
        worker = worker or stack.workers[kill % len(stack.workers)]
        worker.kill()
        worker.start()
    load.join()
    settle(stack, slug, sizes.settle_seconds)
    events = account(report, stack, slug, load)
    seen = deliveries(stack, slug)
    released = sum(e.released for e in events.values())
    twice = sum(1 for count in seen.values() if count > 1)
    report.notes.append(f"{busy} of {sizes.kills} kills hit a worker holding claimed events")
    report.notes.append(
        f"{released} claims of killed workers taken back; {twice} events delivered more than "
        "once (a worker killed between the POST and its commit; receivers dedup on webhook-id)"
    )
    for event in events.values():
        if event.attempts > 1 + event.released:
            report.problems.append(
                f"event {event.id}: {event.attempts} attempts, only {event.released} kills"
            )
        if seen[event.id] > 1 + event.released:
            report.problems.append(
                f"event {event.id}: delivered {seen[event.id]} times, {event.released} kills"
            )
    statuses = load.statuses()
    if set(statuses) != {202}:
        report.problems.append(f"ingest answered {dict(statuses)} (expected only 202)")
    return report


def busy_worker(stack: Stack, within: float) -> Process | None:
    """A worker with events claimed right now (its pool process's pid is in claimed_by)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = stack.sql(
            "SELECT DISTINCT claimed_by FROM workflows_event WHERE state = 'processing'"
        )
        for (claimed_by,) in rows:
            # host:pid:claim, the pid being the worker's pool process
            parts = claimed_by.split(":")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0
            for worker in stack.workers:
                if worker.alive and worker.pid in (pid, _parent_pid(pid)):
                    return worker
        time.sleep(0.05)
    return None


def _parent_pid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


# --- (b) Redis down, then hung -------------------------------------------------------------


@timed
def redis_outages(stack: Stack, sizes: Sizes) -> Report:
    """Redis stopped, then hung with SIGSTOP, each while events stream in."""
    slug = "faults-redis"
    assert stack.redis is not None
    outage = sizes.redis_outage
    report = Report(f"Redis stopped {outage:.0f} s, hung {outage:.0f} s")
    running = {p.name: p.pid for p in stack.processes()}
    rate = 20.0
    total = 3 + outage + 4 + outage + 4
    load = Load(stack.port, slug, stack.tokens[slug], threads=8)
    load.start(numbered(slug, int(rate * total)), rate=rate)

    def stored_while(action: str, begin: Callable[[], None], end: Callable[[], None]) -> None:
        before = stored_count(stack, slug)
        begin()
        time.sleep(outage)
        during = stored_count(stack, slug) - before
        end()
        report.notes.append(f"{during} events stored in the {outage:.0f} s Redis was {action}")
        if during == 0:
            report.problems.append(f"ingest stored nothing while Redis was {action}")

    time.sleep(3)
    stored_while("stopped", stack.redis_stop, stack.start_redis)
    time.sleep(4)
    stored_while(
        "hung",
        lambda: stack.redis.signal(signal.SIGSTOP),  # type: ignore[union-attr]
        lambda: stack.redis.signal(signal.SIGCONT),  # type: ignore[union-attr]
    )
    load.join()
    settle(stack, slug, sizes.settle_seconds)
    account(report, stack, slug, load)
    statuses = load.statuses()
    if set(statuses) != {202}:
        report.problems.append(f"ingest answered {dict(statuses)} (expected only 202)")
    slowest = _slowest(load)
    report.notes.append(f"answers: {dict(statuses)}; slowest gap between answers {slowest:.1f} s")
    survived(report, stack, running)
    return report


def survived(report: Report, stack: Stack, before: dict[str, int]) -> None:
    """Every process running before the outage is still running, the same process; what ended
    one is in the last lines of its log."""
    for process in stack.processes():
        if process.name in before and (process.pid, process.alive) != (before[process.name], True):
            report.problems.append(f"{process.name} did not survive the outage")
            report.notes.extend(f"  {process.name}: {line}" for line in process.last_lines(8))


def _slowest(load: Load) -> float:
    times = sorted(a.at for a in load.answers)
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


# --- (c) PostgreSQL down -------------------------------------------------------------------


@timed
def postgres_outage(stack: Stack, sizes: Sizes) -> Report:
    """PostgreSQL stopped while events stream in: 503, never a 2xx for what was not stored."""
    slug = "faults-pg"
    outage = sizes.postgres_outage
    report = Report(f"PostgreSQL stopped {outage:.0f} s")
    before = {p.name: p.pid for p in stack.processes()}
    rate = 20.0
    load = Load(stack.port, slug, stack.tokens[slug], threads=8)
    load.start(numbered(slug, int(rate * (4 + outage + 8))), rate=rate)
    time.sleep(4)
    stopped = time.monotonic()
    stack.postgres_stop()
    time.sleep(outage)
    stack.postgres_start()
    back = time.monotonic()
    load.join()
    first = min((a.at for a in load.answers if a.status == 202 and a.at > back), default=None)
    report.notes.append(
        f"PostgreSQL down {back - stopped:.1f} s (stop, {outage:.0f} s, start); first 202 "
        + (f"{first - back:.1f} s after it accepted connections" if first else "never")
    )
    settle(stack, slug, sizes.settle_seconds)
    events = account(report, stack, slug, load)
    statuses = load.statuses()
    report.notes.append(f"answers: {dict(statuses)}")
    # What was refused is not counted as lost; only what was acknowledged must be there.
    acknowledged = set(load.acknowledged().values())
    report.lost = sum(
        1 for e in events.values() if e.id in acknowledged and e.state != "succeeded"
    ) + sum(1 for i in acknowledged if i not in events)
    unexpected = {s: n for s, n in statuses.items() if s not in (202, 503)}
    if unexpected:
        report.problems.append(f"answers other than 202 and 503: {unexpected}")
    if not statuses.get(503):
        report.problems.append("no request was answered 503: the outage was not seen")
    refused = [a for a in load.answers if a.status == 503 and a.code != "unavailable"]
    if refused:
        report.problems.append(f"{len(refused)} 503s without the error code unavailable")
    survived(report, stack, before)
    status, body = stack.get("/readyz")
    if status != 200:
        report.problems.append(f"/readyz answers {status} after PostgreSQL came back: {body}")
    return report


# --- (d) two beats, then none --------------------------------------------------------------


@timed
def beats(stack: Stack, sizes: Sizes) -> Report:
    """Two beat processes by mistake: nothing twice. No beat: the overview and /readyz say so."""
    slug = "faults-beat"
    report = Report("two beats, then none")
    stack.beats.append(stack.beat(len(stack.beats)).start())
    rate = sizes.beat_events / 8
    load = Load(stack.port, slug, stack.tokens[slug])
    load.start(numbered(slug, sizes.beat_events), rate=rate)
    # Changes a person makes go on the audit trail, which both beats ask to seal.
    stack.manage(
        "shell", "-c",
        "import io, time\n"
        "from django.core.management import call_command\n"
        "for n in range(5):\n"
        "    call_command('create_api_token', '--name', f'beat-{n}', '--workflow', 'faults-beat',\n"
        "                 stdout=io.StringIO())\n"
        "    time.sleep(1)\n",
    )  # fmt: skip
    load.join()
    settle(stack, slug, sizes.settle_seconds)
    events = account(report, stack, slug, load)
    seen = deliveries(stack, slug)
    twice = [event_id for event_id, n in seen.items() if n > 1]
    if twice:
        report.problems.append(f"{len(twice)} events delivered twice, e.g. {twice[:3]}")
    report.notes.append(f"answers: {dict(load.statuses())}")
    retried = [e.id for e in events.values() if e.attempts != 1]
    if retried:
        report.problems.append(f"{len(retried)} events with other than one attempt")
    try:
        wait_for(
            lambda: stack.sql("SELECT count(*) FROM audit_auditentry WHERE seq IS NULL")[0][0] == 0,
            20,
            "the audit entries to be sealed",
        )
        verified = stack.manage("audit_verify").strip().splitlines()[-1]
        report.notes.append(f"audit_verify: {verified}")
    except (TimeoutError, RuntimeError) as exc:
        report.problems.append(f"the audit chain after two beats: {exc}")

    stack.stop_beats()
    time.sleep(6 + 4)  # HANDOFF_SWEEP_STALE_SECONDS in the stack, and a sweep interval or two
    _, ready = stack.get("/readyz")
    sweeper = ready.get("sweeper", "") if isinstance(ready, dict) else ""
    report.notes.append(f"no beat: /readyz sweeper {sweeper!r}")
    if not sweeper.startswith("stale") or "sweeper" not in ready.get("warnings", []):
        report.problems.append(f"/readyz does not say the sweeper stopped: {ready}")
    overview = overview_sweeper(stack)
    report.notes.append(f"no beat: the overview's sweeper line {overview!r}")
    if "stale" not in overview:
        report.problems.append("the overview does not say the sweeper stopped")
    stack.start_beats()
    try:
        wait_for(
            lambda: stack.get("/readyz")[1].get("sweeper", "").startswith("ok"),
            30,
            "/readyz to see the sweeper again",
        )
    except TimeoutError as exc:
        report.problems.append(str(exc))
    return report


def overview_sweeper(stack: Stack) -> str:
    """The sweeper line of the overview, as a signed-in manager sees it."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    cookies: SimpleCookie = SimpleCookie()

    answers: list[tuple[int, str]] = []

    def request(method: str, path: str, body: str | None = None) -> str:
        headers = {"Cookie": "; ".join(f"{k}={m.value}" for k, m in cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = stack.base_url + path
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        for value in response.headers.get_all("Set-Cookie") or []:
            cookies.load(value)
        text = response.read().decode(errors="replace")
        answers.append((response.status, response.headers.get("Location", "")))
        return text

    page = request("GET", "/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not token:
        return f"(no login form: {answers} {page[:300]!r})"
    form = {
        "csrfmiddlewaretoken": token.group(1),
        "username": "faults-manager",
        "password": "faults-manager-password-1",
    }
    request("POST", "/accounts/login/", urllib.parse.urlencode(form))
    page = request("GET", "/")
    conn.close()
    line = re.search(r'data-testid="check-sweeper">(.*?)</dd>', page, re.S)
    return re.sub(r"<[^>]+>", "", line.group(1)).strip() if line else "(no sweeper line)"


# --- (e) duplicate storm -------------------------------------------------------------------


@timed
def duplicate_storm(stack: Stack, sizes: Sizes) -> Report:
    """Each key posted many times at once: one event per key, every answer naming it."""
    slug = "faults-storm"
    keys, repeats = sizes.storm_keys, sizes.storm_repeats
    report = Report(f"duplicate storm {keys} keys x{repeats}")
    # Copies of a key side by side, so the threads post the same key at the same moment.
    items = [item for item in numbered(slug, keys) for _ in range(repeats)]
    load = Load(stack.port, slug, stack.tokens[slug], threads=16)
    load.start(items, rate=1e9).join()
    settle(stack, slug, sizes.settle_seconds)
    events = account(report, stack, slug, load)
    if len(events) != keys:
        report.problems.append(f"{len(events)} events stored for {keys} keys")
    answers: dict[str, list[Any]] = defaultdict(list)
    for answer in load.answers:
        answers[answer.key].append(answer)
    for key, got in answers.items():
        firsts = [a for a in got if a.status == 202]
        ids = {a.event_id for a in got}
        if len(firsts) != 1 or len(ids) != 1 or any(a.status not in (200, 202) for a in got):
            statuses = Counter(a.status for a in got)
            report.problems.append(f"{key}: answers {dict(statuses)}, ids {sorted(map(str, ids))}")
    seen = deliveries(stack, slug)
    if any(n != 1 for n in seen.values()):
        report.problems.append("an event of the storm was delivered more than once")
    report.notes.append(f"answers: {dict(load.statuses())}")
    return report
