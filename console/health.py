"""Readiness checks: can this process reach the database and the broker right now?"""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection


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
