"""Waiting for what other processes and threads do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connection


def wait_until(
    check: Callable[[], Any], *, timeout: float, sweep: bool = False, what: str = ""
) -> Any:
    """Poll check() until it returns something truthy; sweep meanwhile, as beat would."""
    from workflows.tasks import sweep as sweep_task

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        if sweep:
            sweep_task()
        time.sleep(0.1)


def in_thread(target: Callable[[], None]) -> Callable[[], None]:
    """Each thread has its own database connection; close it so teardown can drop the database."""

    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    return run
