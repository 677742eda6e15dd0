"""django-axes' axes_reset_failure_logs, with what it removed counted on the audit trail."""

from __future__ import annotations

from typing import Any

from axes.management.commands import axes_reset_failure_logs

from console.command_trail import logs_removed


class Command(axes_reset_failure_logs.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        with logs_removed("axes_reset_failure_logs", options):
            super().handle(*args, **options)
