"""Sample reviews: pull completed events of a workflow at random, and a person marks each one.

The draw is seeded and reproducible: events are ordered by md5(seed || id) among the completed
events received since the window's start with an id up to the newest one at the draw, so the
same seed over the same history picks the same events, and anyone can check the sample was not
chosen by hand. Drawing and every mark go on the audit trail.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.db.models.expressions import RawSQL
from django.utils import timezone

from audit.services import audit_record
from workflows.models import Event, EventState, SampleReview, SampleReviewItem, Workflow

SAMPLE_SIZE = 20
WINDOW_DAYS = 30
COMPLETED_STATES = (EventState.SUCCEEDED, EventState.FAILED)
CHECKLIST = (
    ("decision_path_clear", "Decision path clear?"),
    ("exception_caught_early", "Exception caught early?"),
    ("evidence_enough", "Evidence enough?"),
)


class SampleEmpty(Exception):
    """No completed event to draw from."""


def sample_events(
    *, workflow: Workflow, seed: str, since: Any, last_event_id: int, size: int
) -> list[int]:
    """The ids the draw picks, in order: the same arguments always give the same ids."""
    ordering = RawSQL("md5(%s || workflows_event.id::text)", [seed])
    return list(
        Event.objects.filter(
            workflow=workflow,
            state__in=COMPLETED_STATES,
            received_at__gte=since,
            pk__lte=last_event_id,
        )
        .order_by(ordering, "pk")
        .values_list("pk", flat=True)[:size]
    )


@transaction.atomic
def sample_review_create(
    *,
    workflow: Workflow,
    actor: Any,
    seed: str = "",
    size: int = SAMPLE_SIZE,
    days: int = WINDOW_DAYS,
) -> SampleReview:
    """Draw `size` completed events of the last `days` days at random (a new seed unless one is
    given, to redo an earlier draw) and open a review of them."""
    seed = seed.strip() or secrets.token_hex(8)
    since = timezone.now() - timedelta(days=days)
    last_event_id = Event.objects.filter(workflow=workflow).aggregate(m=Max("pk"))["m"] or 0
    ids = sample_events(
        workflow=workflow, seed=seed, since=since, last_event_id=last_event_id, size=size
    )
    if not ids:
        raise SampleEmpty(f"{workflow.slug} has no completed event in the last {days} days.")
    review = SampleReview.objects.create(
        workflow=workflow,
        seed=seed,
        size=len(ids),
        since=since,
        last_event_id=last_event_id,
        created_by=actor,
    )
    SampleReviewItem.objects.bulk_create(
        SampleReviewItem(review=review, event_id=event_id, position=position)
        for position, event_id in enumerate(ids, start=1)
    )
    audit_record(
        actor=actor,
        action="sample_review.create",
        target=review,
        after={
            "workflow": workflow.slug,
            "seed": seed,
            "since": since,
            "last_event_id": last_event_id,
            "events": ids,
        },
    )
    return review


@transaction.atomic
def sample_review_mark(
    *,
    item: SampleReviewItem,
    actor: Any,
    decision_path_clear: bool | None,
    exception_caught_early: bool | None,
    evidence_enough: bool | None,
    note: str = "",
) -> SampleReviewItem:
    """A reviewer's marks on one sampled event (a later mark replaces it; the trail keeps both)."""
    item = SampleReviewItem.objects.select_for_update().get(pk=item.pk)
    before = {name: getattr(item, name) for name, _ in CHECKLIST} | {"note": item.note}
    item.decision_path_clear = decision_path_clear
    item.exception_caught_early = exception_caught_early
    item.evidence_enough = evidence_enough
    item.note = note.strip()
    item.marked_by = actor
    item.marked_at = timezone.now()
    item.save()
    audit_record(
        actor=actor,
        action="sample_review.mark",
        target=item,
        before=before,
        after={name: getattr(item, name) for name, _ in CHECKLIST}
        | {"note": item.note, "event": item.event_id, "review": item.review_id},
    )
    return item
