"""django-axes' axes_reset (lift every sign-in lock), with what it lifted on the audit trail."""

from __future__ import annotations

from typing import Any

from axes.management.commands import axes_reset

from console.command_trail import locks_lifted


class Command(axes_reset.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        with locks_lifted("axes_reset", options):
            super().handle(*args, **options)
