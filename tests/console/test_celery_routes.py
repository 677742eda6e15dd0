"""Each kind of work has its own Celery queue, named in one table (settings.CELERY task_routes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from console.celery import app
from workflows.dispatch import EVENTS_QUEUE, PROCESS_DUE_TASK

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "workflows.process_due": "events",
    "workflows.sweep": "sweeps",
    "workflows.expire_outcomes": "sweeps",
    "workflows.learn_shapes": "sweeps",
    "console.outcomes_roll_up": "sweeps",
    "exceptions.resume_bulk_jobs": "sweeps",
    "exceptions.wake_snoozed": "sweeps",
    "exceptions.escalate": "sweeps",
    "exceptions.send_notices": "sweeps",
    "exceptions.bulk_run": "bulk",
    "audit.seal": "audit",
    "audit.verify": "audit",
    "audit.prune": "audit",
    "console.ping": "default",
    "console.demo_triage": "default",
}


def our_tasks() -> dict[str, object]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def routed_queue(name: str, **options: object) -> str:
    """The queue a message for `name` goes to, as the producer decides it."""
    task = our_tasks()[name]
    return app.amqp.router.route(dict(options), name, task_type=task)["queue"].name


@pytest.mark.parametrize(("name", "queue"), sorted(EXPECTED.items()))
def test_each_task_routes_to_the_queue_of_its_kind_of_work(name: str, queue: str) -> None:
    # The options a task's own apply_async adds (its declared queue, if any) included.
    options = our_tasks()[name]._get_exec_options()  # type: ignore[attr-defined]
    assert routed_queue(name, **{k: v for k, v in options.items() if v is not None}) == queue


def test_every_task_is_in_the_routing_table() -> None:
    assert set(our_tasks()) == set(EXPECTED)
    assert set(EXPECTED.values()) == set(settings.CELERY_QUEUES)


def test_wake_ups_sent_by_name_go_where_the_routing_table_sends_the_task() -> None:
    assert routed_queue(PROCESS_DUE_TASK) == EVENTS_QUEUE == "events"


def test_beat_entries_leave_the_queue_to_the_routing_table() -> None:
    for entry in settings.CELERY["beat_schedule"].values():
        assert "queue" not in entry.get("options", {})
        assert entry["task"] in EXPECTED


@pytest.mark.parametrize("procfile", ["Procfile", "Procfile.local"])
def test_the_procfile_workers_consume_every_queue(procfile: str) -> None:
    consumed: set[str] = set()
    for line in (ROOT / procfile).read_text().splitlines():
        words = line.split()
        if "worker" in words and "--queues" in words:
            consumed |= set(words[words.index("--queues") + 1].split(","))
    assert consumed == set(settings.CELERY_QUEUES)


def test_a_fresh_process_loads_the_routing_table_without_errors() -> None:
    # As gunicorn and the workers do: the Celery app reads settings lazily, on first use.
    code = (
        "import django; django.setup()\n"
        "from console.celery import app\n"
        "import exceptions.tasks\n"
        "print(app.amqp.router.route({}, 'exceptions.bulk_run')['queue'].name)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "bulk"
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
