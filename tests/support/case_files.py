"""Data for the case file's tests, its screenshot and its benchmark: a refund's whole story
through the real engine, and an event retried thousands of times."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import time_machine
from django.utils import timezone

from audit.actors import actor_for_token
from audit.models import AuditEntry
from audit.services import audit_seal_pending
from exceptions import actions
from exceptions.approvals.models import ApprovalRequest
from exceptions.models import ExceptionCase
from exceptions.services import case_resolve
from tests import factories
from tests.support.approvals import approve
from tests.support.engine import process_due
from tests.support.sinks import Reply, Sink
from workflows.models import Attempt, Decision, Event, EventState, OutcomeStatus
from workflows.services.outcomes import outcome_report

NEW_ACCOUNT = "DE02120300000000202051"


def finance_teams(manager: Any) -> None:
    """finance-ops (finn works there) owns refunds; the manager leads finance-managers."""
    ops = factories.TeamFactory(slug="finance-ops", name="Finance ops")
    factories.MembershipFactory(team=ops, user__username="finn")
    leads = factories.TeamFactory(slug="finance-managers", name="Finance managers")
    factories.MembershipFactory(team=leads, user=manager, role="lead")


def refund_story(sink: Sink, manager: Any, operator: Any) -> tuple[Event, Event]:
    """A refund of 2500 is held for review, approved by a manager, rejected by the payments
    service (the account is closed), replayed with the new account by an operator once the
    manager approved that request, held and approved again, delivered on the second try and
    confirmed by the payment provider; the trail is sealed. Returns (the original, its replay).
    """
    url = sink.script("/payments", Reply(422, b"account closed"), Reply(503))
    version = factories.version_create(factories.refund_approval_definition(url=url))
    original = factories.event_create(version, factories.BIG_REFUND)
    process_due()
    review = ExceptionCase.objects.get(event=original, reason_id="review_required")
    case_resolve(case=review, actor=manager, resolution="approved", note="Order checked")
    process_due()
    rejected = ExceptionCase.objects.get(event=original, reason_id="delivery_rejected")
    # The operator corrects the account: an edited replay waits for a second person.
    edit = actions.ACTIONS["replay_edit"]
    form = edit.form(
        {
            "version": rejected.version,
            "payload": json.dumps({**factories.BIG_REFUND, "account": NEW_ACCOUNT}),
            "note": "The old account is closed; the customer gave a new one",
        }
    )
    assert form.is_valid(), form.errors
    actions.perform(edit, case=rejected, actor=operator, form=form)
    request = ApprovalRequest.objects.get(case=rejected)
    done = approve(request, by=manager, comment="New account confirmed with the customer")
    replay = Event.objects.get(pk=done.result["replay_event"])
    process_due()
    again = ExceptionCase.objects.get(event=replay, reason_id="review_required")
    case_resolve(case=again, actor=manager, resolution="approved", note="Same refund")
    process_due()
    # The retry is due five seconds later; the provider confirms after it.
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        process_due()
        replay = Event.objects.get(pk=replay.pk)
        assert replay.state == EventState.DELIVERED
        outcome_report(
            event=replay,
            status=OutcomeStatus.ACHIEVED,
            evidence={"refund_id": "R-77"},
            actor=actor_for_token("payments"),
        )
        audit_seal_pending()
    return original, replay


def retries_pile_up(event: Event, rows: int) -> None:
    """`rows` more failed attempts, each with its decision and an audit entry about the event,
    inserted as the engine and the services would have written them."""
    start = Attempt.objects.filter(event=event).count()
    now = timezone.now()
    Attempt.objects.bulk_create(
        Attempt(
            event=event,
            number=start + n + 1,
            trigger="retry",
            started_at=now + timedelta(seconds=n),
            finished_at=now + timedelta(seconds=n, milliseconds=20),
            status="failed",
            http_status=503,
            duration_ms=20,
        )
        for n in range(rows)
    )
    Decision.objects.bulk_create(
        Decision(
            event=event,
            step="deliver",
            rule="webhook",
            version_number=1,
            result={"verdict": "retry"},
            ok=False,
            explanation="HTTP 503: will retry",
            created_at=now + timedelta(seconds=n, milliseconds=30),
        )
        for n in range(rows)
    )
    AuditEntry.objects.bulk_create(
        AuditEntry(
            created_at=now + timedelta(seconds=n),
            actor_kind="system",
            actor_label="system",
            action="event.retry",
            object_type="workflows.event",
            object_id=str(event.pk),
        )
        for n in range(rows)
    )
