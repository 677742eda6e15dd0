from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.actors import command_actor
from audit.retention import ARCHIVE_MAX_ROWS, PruneRefused, audit_prune


class Command(BaseCommand):
    help = (
        "Archive audit entries older than the retention period (with their digest), then remove "
        "them from the table; the chain verifies on from the retention floor."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, help="keep this many days (default: AUDIT_RETENTION_DAYS)"
        )
        parser.add_argument(
            "--archive-dir", type=Path, help="where archives go (default: AUDIT_ARCHIVE_DIR)"
        )
        parser.add_argument(
            "--max-rows", type=int, default=ARCHIVE_MAX_ROWS, help="entries per archive file"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else settings.AUDIT_RETENTION_DAYS
        if days is None:
            raise CommandError("no retention period: give --days N or set AUDIT_RETENTION_DAYS")
        if days < 1 or options["max_rows"] < 1:
            raise CommandError("--days and --max-rows must be at least 1")
        archive_dir = options["archive_dir"] or Path(settings.AUDIT_ARCHIVE_DIR)
        older_than = timezone.now() - timedelta(days=days)
        total = 0
        while True:
            try:
                result = audit_prune(
                    older_than=older_than,
                    archive_dir=archive_dir,
                    actor=command_actor("audit_prune"),
                    max_rows=options["max_rows"],
                )
            except PruneRefused as exc:
                raise CommandError(f"retention cut refused: {exc}") from exc
            if not result.rows:
                break
            total += result.rows
            self.stdout.write(
                f"archived seq {result.first_seq} to {result.floor_seq} ({result.rows} entries) "
                f"to {result.archive}, then removed them"
            )
        self.stdout.write(
            self.style.SUCCESS(f"{total} entries older than {days} days archived and removed")
        )
