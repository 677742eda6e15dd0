"""Per-token request limits for the HTTP API: a fixed-window counter in Redis.

Redis is a helper here, not the truth: when it cannot be reached the request is allowed (fail
open), so ingest keeps storing events while Redis is down. After a failure Redis is left alone
for a few seconds, so an outage does not add a connect timeout to every request.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 600
DEFAULT_WINDOW_SECONDS = 60
REDIS_BACKOFF_SECONDS = 5.0
KEY_PREFIX = "handoff:ratelimit"

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_redis_down_until = 0.0


class RateLimited(Exception):
    """Too many requests in the current window; retry_after is whole seconds to wait."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"rate limit exceeded, retry after {retry_after}s")


def _client(url: str) -> redis.Redis:
    # One client (one connection pool) per URL and process; short timeouts, no retries.
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.setdefault(
                url,
                redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5),
            )
    return client


def rate_limit_check(key: str) -> None:
    """Count one request for key (a token); raise RateLimited when over the limit."""
    global _redis_down_until
    limit = getattr(settings, "HANDOFF_API_RATE_LIMIT", DEFAULT_LIMIT)
    window = getattr(settings, "HANDOFF_API_RATE_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS)
    if not limit or time.monotonic() < _redis_down_until:
        return
    now = time.time()
    window_index = int(now // window)
    counter = f"{KEY_PREFIX}:{key}:{window_index}"
    try:
        pipe = _client(settings.REDIS_URL).pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, window + 1)
        count, _ = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        with _lock:
            _redis_down_until = time.monotonic() + REDIS_BACKOFF_SECONDS
        logger.warning("rate limiter cannot reach Redis, allowing requests: %s", exc)
        return
    if count > limit:
        raise RateLimited(max(1, math.ceil((window_index + 1) * window - now)))
