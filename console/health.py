"""Readiness checks: can this process reach the database and the broker right now, and did the
sweeper run lately?"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.timesince import timesince

from audit.models import ChainCheck
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


def check_audit_chain() -> str:
    """ "ok (...)", "BROKEN: ..." when the last check of the chain failed, or "stale: ..."."""
    try:
        last = ChainCheck.objects.order_by("-checked_at", "-id").first()
    except Exception as exc:  # as for the sweeper: the database check reports the database
        return f"unknown: {exc.__class__.__name__}"
    if last is None:
        interval = settings.AUDIT_VERIFY_INTERVAL_SECONDS
        return f"ok (not checked yet: beat walks the chain every {interval} s)"
    when = f"checked {timesince(last.checked_at)} ago"
    if not last.ok:
        return f"BROKEN: {last.problem} ({when})"
    age = (timezone.now() - last.checked_at).total_seconds()
    if age > 2 * settings.AUDIT_VERIFY_INTERVAL_SECONDS:
        return f"stale: last {when}; is Celery beat running?"
    head = f", head seq {last.head_seq}" if last.head_seq else ""
    return f"ok ({last.entries} entries verified{head}, {when})"


@dataclass(frozen=True)
class Check:
    name: str
    text: str

    @property
    def ok(self) -> bool:
        return self.text == "ok" or self.text.startswith("ok (")

    @property
    def alarm(self) -> bool:
        """Evidence of tampering, not an outage: said at the top of the page, in red."""
        return self.text.startswith("BROKEN")


def system_checks() -> list[Check]:
    """What the overview's System panel shows."""
    return [
        Check("database", check_database()),
        Check("broker", check_broker()),
        Check("sweeper", check_sweeper()),
        Check("audit chain", check_audit_chain()),
    ]
