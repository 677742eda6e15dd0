from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.actors import command_actor
from audit.export_check import export_check
from audit.exports import (
    FORMATS,
    PIN,
    Export,
    ExportRefused,
    digest_path,
    export_plan,
    export_write,
)
from audit.filters import FILTER_NAMES
from audit.models import AuditEntry
from audit.services import audit_export_record


class Command(BaseCommand):
    help = (
        "Export the audit trail (sealed entries, in chain order) to FILE, with its signed digest "
        "in FILE.digest; the filters are those of /audit/. With --verify FILE, check a file "
        "against its digest and say what is wrong with it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=sorted(FORMATS), help="jsonl or csv")
        parser.add_argument("--output", type=Path, metavar="FILE", help="where to write it")
        for name in FILTER_NAMES:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUE")
        parser.add_argument(
            f"--{PIN.replace('_', '-')}",
            dest=PIN,
            metavar="SEQ",
            help="pin the export to this chain head (default: the newest sealed entry)",
        )
        parser.add_argument("--verify", type=Path, metavar="FILE", help="check FILE instead")
        parser.add_argument(
            "--digest", type=Path, metavar="DIGEST", help="with --verify: the digest file"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verify"]:
            self._verify(options["verify"], options["digest"])
            return
        if not options["format"] or not options["output"]:
            raise CommandError("give --format jsonl|csv and --output FILE (or --verify FILE)")
        params = {
            name: str(options[name])
            for name in (*FILTER_NAMES, PIN)
            if options.get(name) not in (None, "")
        }
        try:
            plan = export_plan(params, visible=AuditEntry.objects.all(), scope="all")
        except ExportRefused as exc:
            raise CommandError(f"cannot export: {exc}") from exc
        export = Export(plan, options["format"])
        path: Path = options["output"]
        digest = export_write(export, path, created_at=timezone.now())
        audit_export_record(actor=command_actor("audit_export"), digest=digest)
        head = digest["head"]
        self.stdout.write(
            self.style.SUCCESS(f"wrote {digest['rows']} entries to {path}")
            + (f" (seq {digest['first_seq']} to {digest['last_seq']})" if digest["rows"] else "")
            + (f", chain head seq {head['seq']}" if head else ", nothing sealed yet")
            + f"; digest in {digest_path(path)}"
        )

    def _verify(self, path: Path, digest: Path | None) -> None:
        if not path.exists():
            raise CommandError(f"{path}: no such file")
        check = export_check(path, digest_path=digest)
        if not check.ok:
            raise CommandError(f"{path} does NOT verify: " + "; ".join(check.problems))
        document = check.digest or {}
        head = document.get("head") or {}
        self.stdout.write(
            self.style.SUCCESS(f"{path} verifies: {check.rows} entries")
            + f", sha256 {document.get('sha256', '')[:16]}…"
            + (f", chain head seq {head['seq']}" if head else "")
        )
