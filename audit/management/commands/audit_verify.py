from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.head import HeadInvalid, HeadMismatch, current_head, head_advance
from audit.verification import verify_chain, verify_head


class Command(BaseCommand):
    help = (
        "Walk the audit chain and name the first entry that does not verify. With --head FILE, "
        "also check that the table still holds the chain head recorded in FILE (a shortened or "
        "rewritten chain fails), then record the current head there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--head",
            type=Path,
            metavar="FILE",
            help="a head file kept outside the database (created on first use)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain()
        if not report.ok:
            raise CommandError(
                f"audit chain BROKEN at {report.location}: "
                f"{report.problem}. {report.checked} entries before it verified."
            )
        path: Path | None = options["head"]
        if path is not None:
            problem = verify_head(path)
            if problem:
                raise CommandError(f"audit chain BROKEN: {problem}")
        self.stdout.write(
            self.style.SUCCESS(f"audit chain OK: {report.checked} sealed entries verified")
            + (f"; {report.unsealed} waiting to be sealed" if report.unsealed else "")
        )
        head = current_head()
        if path is not None and head is not None:
            try:
                kept = head_advance(path, head)
            except (HeadInvalid, HeadMismatch) as exc:  # changed between the check and now
                raise CommandError(f"audit chain BROKEN: head file {path}: {exc}") from exc
            self.stdout.write(f"head seq {kept.seq} ({kept.hash[:16]}…) recorded in {path}")
