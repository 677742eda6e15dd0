"""Periodic jobs say when they last ran, so a stopped Celery beat is visible, not silent."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from workflows.models import Heartbeat

SWEEP = "sweep"


def heartbeat_record(*, name: str, detail: dict[str, Any] | None = None) -> None:
    """Note that `name` ran now: one upsert, nothing else (it runs every few seconds)."""
    Heartbeat.objects.bulk_create(
        [Heartbeat(name=name, at=timezone.now(), detail=detail or {})],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["at", "detail"],
    )
