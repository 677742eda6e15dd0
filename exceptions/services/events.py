"""A person retries or replays an event from its own page, when no open case holds it.

An open case is where an event that waits for a person is worked: acting on the case closes it
with the retry or replay. These are for the rest: an event that failed or was cancelled and
whose cases are closed, or one that succeeded and must be sent again. The engine's services do
the work and write the audit entry; what is checked here is only what needs the cases.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.context import current_approval_id
from exceptions.models import OPEN_STATES, ExceptionCase
from exceptions.services.cases import CaseActionRefused
from workflows.models import Event, EventState
from workflows.services import engine

# What the event page offers: a retry reruns the step that stopped the event; a replay runs
# an event that is finished (or stuck with nobody on it) again from the start, as a new event.
PAGE_RETRY_STATES = (EventState.FAILED, EventState.NEEDS_ATTENTION)
PAGE_REPLAY_STATES = (
    EventState.SUCCEEDED,
    EventState.FAILED,
    EventState.CANCELLED,
    EventState.NEEDS_ATTENTION,
)


def _refuse_if_held(event: Event) -> None:
    case = (
        ExceptionCase.objects.filter(event_id=event.pk, state__in=OPEN_STATES)
        .order_by("opened_at", "id")
        .first()
    )
    if case is not None:
        raise CaseActionRefused(
            f"Case {case.pk} is open on this event: act on the case, so it closes with the "
            "retry or replay."
        )


@transaction.atomic
def event_retry_from_page(*, event: Event, actor: Any, note: str = "") -> Event:
    """Rerun the step that stopped a failed event; refused while a case holds it."""
    _refuse_if_held(event)
    if event.state not in PAGE_RETRY_STATES:
        raise CaseActionRefused(
            f"Event {event.pk} is {event.get_state_display().lower()}: only a failed event "
            "can be retried."
        )
    try:
        return engine.event_retry(event=event, actor=actor, note=note)
    except engine.EventNotRetryable as exc:
        raise CaseActionRefused(str(exc)) from exc


@transaction.atomic
def event_replay_from_page(
    *, event: Event, actor: Any, run_version: str = "original", note: str = ""
) -> Event:
    """Run a finished event again from the start as a new event; refused while a case holds it.

    Replaying an event the destination already accepted sends it again: the engine asks for a
    note saying why.
    """
    _refuse_if_held(event)
    if event.state not in PAGE_REPLAY_STATES:
        raise CaseActionRefused(
            f"Event {event.pk} is {event.get_state_display().lower()}: wait until it finishes "
            "before replaying it."
        )
    try:
        return engine.event_replay(
            event=event,
            actor=actor,
            version=run_version,
            note=note,
            approval_id=current_approval_id.get(),
        )
    except engine.ReplayNotPossible as exc:
        raise CaseActionRefused(str(exc)) from exc
