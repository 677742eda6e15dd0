"""What the engine would decide for a payload, by running its own steps with writes turned off.

The steps never write: they record decisions and attention requests on a Run, and only the
batch writes a Run. A dry run builds an unsaved event, runs the same step functions on it
(validate, enrich, route, review, and deliver, which only prepares its request), and returns
what they recorded instead of writing it: nothing is saved, no signal sent, no webhook sent, no
audit entry made. Its explanations are therefore the engine's own sentences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from workflows.destinations import redacted_url
from workflows.models import Decision, Event, EventState, Step, WorkflowVersion
from workflows.owners import owner_ref
from workflows.rules import compiled_version
from workflows.services.engine.route import OwnerDirectory
from workflows.services.engine.run import Run, owner_label
from workflows.services.engine.steps import steps_run

_VERDICTS = {
    "validation_failed": "would stop at validation (validation_failed)",
    "rule_error": "would stop on a rule error (rule_error)",
    "no_owner": "would find no owner (no_owner)",
    "review_required": "would wait for review (review_required)",
}


@dataclass(frozen=True)
class DryRun:
    """What processing a payload under a version would record, had the engine run it now."""

    version_number: int
    decisions: list[Decision]  # unsaved, in the order the engine would record them
    stopped_at: str  # the step that would stop the event; "" if it would reach the action
    reason_code: str  # the case that step would open; "" if none
    detail: str  # that case's detail, as the engine would write it
    case_owner: str  # who that case would go to (team slug or user:<name>); "" if no one
    owner: str  # the owner routing would choose; "" if routing would not choose one
    context: dict[str, Any]
    action: str  # "webhook" or "none"
    destination: str  # the webhook's URL, for a webhook action

    @property
    def route_decision(self) -> Decision | None:
        return next((d for d in self.decisions if d.step == Step.ROUTE), None)

    @property
    def verdict(self) -> str:
        """In a few words, what would happen."""
        if self.reason_code:
            return _VERDICTS.get(
                self.reason_code, f"would stop at {self.stopped_at} ({self.reason_code})"
            )
        if self.action == "webhook":
            return "would route and run the action"
        return "would route and finish (no action)"


def payload_dry_run(
    *, version: WorkflowVersion, payload: Any, owners: OwnerDirectory | None = None
) -> DryRun:
    """Run the engine's steps on `payload` under `version`, up to the action, writing nothing.

    Dry runs of many payloads (a simulation) share one OwnerDirectory, as a batch does.
    """
    now = timezone.now()
    event = Event(
        workflow=version.workflow,
        version=version,
        payload=payload,
        state=EventState.PROCESSING,
        step=Step.VALIDATE,
        received_at=now,
    )
    compiled = compiled_version(version)
    run = Run(event=event, compiled=compiled, now=now)
    steps_run(run, owners or OwnerDirectory(), through=Step.DELIVER)
    attention = run.attention[0] if run.attention else {}
    return DryRun(
        version_number=compiled.version_number,
        decisions=list(run.decisions),
        stopped_at=str(attention.get("step", "")),
        reason_code=attention.get("reason_code", ""),
        detail=attention.get("detail", ""),
        case_owner=owner_ref(attention.get("owner")),
        owner=owner_label(event),
        context=dict(event.context or {}),
        action=compiled.action.type,
        destination=redacted_url(run.delivery.url) if run.delivery is not None else "",
    )


def event_dry_run(*, event: Event, payload: Any = None, version: str = "current") -> DryRun:
    """What a replay of `event` would decide: its payload (or an edited one) under the
    workflow's current version ("current", the event's own when there is none) or "original"."""
    target = event.version
    if version == "current":
        target = event.workflow.current_version or event.version
    return payload_dry_run(version=target, payload=event.payload if payload is None else payload)
