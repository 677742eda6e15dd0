"""Per-token request limits for the HTTP API: fixed-window counters, shared through Redis.

A request never waits on Redis. It counts itself in the process (under a lock, in
microseconds) against the window's total as last read from Redis plus what this process has
counted since; a flusher thread adds those counts to Redis with INCRBY and reads the new totals
back, at most every FLUSH_SECONDS. Within one process the limit is exact; across processes a
window can overshoot by what the others counted since their last flush (a few requests at
FLUSH_SECONDS = 0.05).

Redis is a helper here, not the truth: when it cannot be reached each process keeps counting
on its own, and Redis is left alone for a few seconds after a failure.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 600
DEFAULT_WINDOW_SECONDS = 60
REDIS_BACKOFF_SECONDS = 5.0
FLUSH_SECONDS = 0.05
KEY_PREFIX = "handoff:ratelimit"

_lock = threading.Lock()
_flush_wanted = threading.Condition(_lock)
_clients: dict[str, redis.Redis] = {}
_redis_down_until = 0.0
# (key, window index) -> [counted here and not yet in Redis, the window's total in Redis]
_counters: dict[tuple[str, int], list[int]] = {}
_flusher_pid = 0


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


def _window() -> int:
    return int(getattr(settings, "HANDOFF_API_RATE_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS))


def counter_key(key: str, window_index: int) -> str:
    return f"{KEY_PREFIX}:{key}:{window_index}"


def rate_limit_check(key: str) -> None:
    """Count one request for key (a token); raise RateLimited when over the limit."""
    limit = getattr(settings, "HANDOFF_API_RATE_LIMIT", DEFAULT_LIMIT)
    if not limit:
        return
    window = _window()
    now = time.time()
    window_index = int(now // window)
    with _flush_wanted:
        counter = _counters.get((key, window_index))
        if counter is None:
            for old in [k for k in _counters if k[1] < window_index - 1]:
                del _counters[old]
            counter = _counters[(key, window_index)] = [0, 0]
        counter[0] += 1
        count = counter[0] + counter[1]
        _ensure_flusher()
        _flush_wanted.notify()
    if count > limit:
        raise RateLimited(max(1, math.ceil((window_index + 1) * window - now)))


def rate_limit_flush() -> bool:
    """Add this process's counts to Redis and read the totals back; False if Redis failed."""
    global _redis_down_until
    with _lock:
        if time.monotonic() < _redis_down_until:
            return False
        batch = [(key, n[0]) for key, n in _counters.items() if n[0]]
    if not batch:
        return True
    window = _window()
    try:
        pipe = _client(settings.REDIS_URL).pipeline(transaction=False)
        for (key, window_index), pending in batch:
            pipe.incrby(counter_key(key, window_index), pending)
            pipe.expire(counter_key(key, window_index), window + 1)
        totals = pipe.execute()[::2]
    except (redis.RedisError, OSError) as exc:
        with _lock:
            _redis_down_until = time.monotonic() + REDIS_BACKOFF_SECONDS
        logger.warning("rate limiter cannot reach Redis, counting in this process: %s", exc)
        return False
    with _lock:
        for (counted, pending), total in zip(batch, totals, strict=True):
            counter = _counters.get(counted)
            if counter is not None:
                counter[0] -= pending
                counter[1] = int(total)
    return True


def _flush_forever() -> None:
    while True:
        with _flush_wanted:
            while not any(n[0] for n in _counters.values()):
                _flush_wanted.wait()
        if not rate_limit_flush():
            time.sleep(max(FLUSH_SECONDS, _redis_down_until - time.monotonic()))
        time.sleep(FLUSH_SECONDS)


def _ensure_flusher() -> None:
    """One flusher thread per process, started after fork (a child has no parent's threads).
    Called with the lock held."""
    global _flusher_pid
    pid = os.getpid()
    if _flusher_pid != pid:
        _flusher_pid = pid
        threading.Thread(target=_flush_forever, name="ratelimit-flusher", daemon=True).start()
