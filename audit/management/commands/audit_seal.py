from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit.services import audit_seal_pending


class Command(BaseCommand):
    help = "Seal every audit entry waiting for its place in the chain (the periodic sealer, now)."

    def handle(self, *args: Any, **options: Any) -> None:
        sealed = audit_seal_pending(max_batches=1_000_000)
        self.stdout.write(f"sealed {sealed} entries")
