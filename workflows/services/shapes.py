"""Learning each workflow's usual payload shape from its recent events (see workflows.shapes)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from workflows.models import Event, ShapeScan, Workflow
from workflows.shapes import HISTORY, profile_learn


@transaction.atomic
def shape_profile_learn(*, workflow: Workflow, now: datetime | None = None) -> ShapeScan:
    """The workflow's profile from its last HISTORY events received from outside.

    Events that drifted are learned from too: a change upstream that stays becomes the usual
    shape after enough of them, and stops being flagged.
    """
    rows = list(
        Event.objects.filter(workflow=workflow, replay_of__isnull=True)
        .order_by("-received_at", "-id")
        .values_list("id", "payload")[:HISTORY]
    )
    scan, _ = ShapeScan.objects.update_or_create(
        workflow=workflow,
        defaults={
            "profile": profile_learn(payload for _, payload in rows),
            "last_event_id": max((pk for pk, _ in rows), default=0),
            "scanned_at": now or timezone.now(),
        },
    )
    return scan


def shape_profiles_learn(*, now: datetime | None = None) -> int:
    """Learn every workflow's profile; how many were learned."""
    workflows = Workflow.objects.filter(current_version__isnull=False).order_by("pk")
    for workflow in workflows:
        shape_profile_learn(workflow=workflow, now=now)
    return len(workflows)
