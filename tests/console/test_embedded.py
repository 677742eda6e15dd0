"""The embedded servers behind `make run` and `make test`: they start, serve, and stop cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, psycopg, redis
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    db = conn.execute("select current_database()").fetchone()[0]
r = redis.Redis.from_url(os.environ["REDIS_URL"])
r.set("probe", "kept")
servers = json.load(open(os.path.join(os.environ["HANDOFF_DATA_DIR"], "servers.json")))
print(json.dumps({"db": db, "redis": r.ping(), "holder_pid": servers["holder_pid"]}))
"""


def run_embedded(data_dir: Path, code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}} | {
        "HANDOFF_DATA_DIR": str(data_dir)
    }
    result = subprocess.run(
        [sys.executable, "-m", "console.embedded", "run", "--", sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(400)
def test_embedded_servers_start_serve_keep_data_and_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = run_embedded(data_dir, PROBE)
    assert first == {"db": "handoff", "redis": True, "holder_pid": first["holder_pid"]}
    assert not pid_alive(first["holder_pid"])
    assert not (data_dir / "servers.json").exists()

    kept = (
        "import json, os, redis\n"
        "value = redis.Redis.from_url(os.environ['REDIS_URL']).get('probe').decode()\n"
        "print(json.dumps({'probe': value}))"
    )
    assert run_embedded(data_dir, kept) == {"probe": "kept"}
    postgres = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True)
    assert postgres.stdout.strip() == "", "no server process outlives the run"
