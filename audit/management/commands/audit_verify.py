from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.verification import verify_chain


class Command(BaseCommand):
    help = "Walk the audit chain and name the first entry that does not verify."

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain()
        if not report.ok:
            raise CommandError(
                f"audit chain BROKEN at entry #{report.broken_entry_id} (seq {report.broken_seq}): "
                f"{report.problem}. {report.checked} entries before it verified."
            )
        self.stdout.write(
            self.style.SUCCESS(f"audit chain OK: {report.checked} sealed entries verified")
            + (f"; {report.unsealed} waiting to be sealed" if report.unsealed else "")
        )
