"""django-axes' axes_reset_username, with what it lifted on the audit trail."""

from __future__ import annotations

from typing import Any

from axes.management.commands import axes_reset_username

from console.command_trail import locks_lifted


class Command(axes_reset_username.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        with locks_lifted("axes_reset_username", options):
            super().handle(*args, **options)
