"""Readiness checks: can this process reach the database and the broker right now, and did the
sweeper run lately?"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.timesince import timesince

from workflows.models import Heartbeat
from workflows.services.heartbeats import SWEEP


def check_database() -> str:
    """ "ok", or why the database cannot be reached."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"unreachable: {exc.__class__.__name__}"
    return "ok"


def check_broker() -> str:
    """ "ok", or why the Redis broker cannot be reached."""
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"unreachable: {exc.__class__.__name__}"
    finally:
        client.close()
    return "ok"


def check_sweeper() -> str:
    """ "ok (last sweep N ago)", or why due events may be waiting: beat or the workers stopped."""
    try:
        beat = Heartbeat.objects.filter(name=SWEEP).first()
    except Exception as exc:  # the database check reports the database; this one just can't tell
        return f"unknown: {exc.__class__.__name__}"
    if beat is None:
        return "stale: no sweep has run yet"
    age = timezone.now() - beat.at
    when = (
        f"last sweep {timesince(beat.at)} ago"
        if age.total_seconds() >= 60
        else (f"last sweep {max(0, int(age.total_seconds()))} s ago")
    )
    if age.total_seconds() > settings.HANDOFF_SWEEP_STALE_SECONDS:
        return f"stale: {when}; is Celery beat running?"
    return f"ok ({when})"


@dataclass(frozen=True)
class Check:
    name: str
    text: str

    @property
    def ok(self) -> bool:
        return self.text == "ok" or self.text.startswith("ok (")


def system_checks() -> list[Check]:
    """What the overview's System panel shows."""
    return [
        Check("database", check_database()),
        Check("broker", check_broker()),
        Check("sweeper", check_sweeper()),
    ]
