"""One event's run through its steps: the records it would write and the people it would ask.

A step never writes: it adds decisions, attempts and outcomes to its Run, changes the event in
memory, and asks for attention. The batch writes all of that together, or, in a dry run,
nothing does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from workflows.delivery import WebhookRequest, WebhookResult
from workflows.models import Decision, Event, EventState, Outcome, ShapeScan
from workflows.owners import owner_find, owner_ref
from workflows.ownership import OwnerLines, owner_lines_at
from workflows.rules import CompiledWorkflow, Rule, RuleResult
from workflows.services.engine.wording import as_json
from workflows.signals import attention_needed

# The columns a batch writes back; the received record (payload and the rest) is never touched.
EVENT_FIELDS = [
    "state",
    "step",
    "context",
    "owner_team",
    "owner_user",
    "attempt_count",
    "next_attempt_at",
    "delivered_at",
    "outcome_due_at",
    "completed_at",
    "pending_trigger",
    "pending_actor",
    "pending_actor_label",
    "processing_failures",
    "updated_at",
]


def shape_profiles(workflow_ids: set[int]) -> dict[int, dict[str, Any]]:
    """Each workflow's learned shape, by workflow id (those with none learned are absent)."""
    return dict(
        ShapeScan.objects.filter(workflow_id__in=workflow_ids).values_list("workflow_id", "profile")
    )


@dataclass
class Run:
    """One event's work in a batch: the records to write and the signals to send with them."""

    event: Event
    compiled: CompiledWorkflow
    now: datetime
    # Attempts are not kept here: each is written the moment its answer comes back.
    decisions: list[Decision] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    attention: list[dict[str, Any]] = field(default_factory=list)
    delivery: WebhookRequest | None = None
    # Set after a 2xx when the workflow waits for confirmation: settled inside the write, where
    # a callback that overtook the 2xx is visible.
    awaiting_confirmation: WebhookResult | None = None
    # The workflow's owner lines in force at `now`, read once (the batch may share them).
    lines: OwnerLines | None = None
    # How the payload departs from its workflow's usual shape ({"path", "change", "expected",
    # "seen"} each), written with the run as the event's ShapeDrift.
    shape_drift: list[dict[str, str]] = field(default_factory=list)
    # The shape the workflow's recent payloads had (ShapeScan.profile, {} if none learned yet),
    # read once (a batch reads all its workflows' in one query).
    shape_profile: dict[str, Any] | None = None

    def usual_shape(self) -> dict[str, Any]:
        """The shape this run's payload is compared with."""
        if self.shape_profile is None:
            self.shape_profile = shape_profiles({self.event.workflow_id}).get(
                self.event.workflow_id, {}
            )
        return self.shape_profile

    def owner_lines(self) -> OwnerLines:
        """The workflow's owner team and fallback chain in force when this run started."""
        if self.lines is None:
            self.lines = owner_lines_at(
                workflow_id=self.event.workflow_id, compiled=self.compiled, at=self.now
            )
        return self.lines

    def decide(
        self,
        *,
        step: str,
        rule: str,
        explanation: str,
        inputs: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        ok: bool = True,
    ) -> Decision:
        decision = Decision(
            event=self.event,
            step=step,
            rule=rule,
            version_number=self.compiled.version_number,
            inputs=as_json(inputs or {}),
            result=as_json(result or {}),
            ok=ok,
            explanation=explanation,
            created_at=timezone.now(),
        )
        self.decisions.append(decision)
        return decision

    def needs_attention(
        self, *, reason_code: str, detail: str, owner: Any, fingerprint_key: str
    ) -> None:
        self.event.state = EventState.NEEDS_ATTENTION
        self.event.next_attempt_at = None
        self.attention.append(
            {
                "reason_code": reason_code,
                "detail": detail,
                "owner": owner,
                "step": self.event.step,
                "fingerprint_key": fingerprint_key,
            }
        )

    def rule_failed(self, rule: Rule, inputs: dict[str, Any], outcome: RuleResult) -> None:
        """A rule that errored: its decision, and a rule_error case for whoever owns the event."""
        version = self.compiled.version_number
        self.decide(
            step=self.event.step,
            rule=rule.name,
            inputs=inputs,
            result={"error": outcome.error, "error_class": outcome.error_class},
            ok=False,
            explanation=f"Rule {rule.name} failed: {outcome.error} (v{version})",
        )
        self.needs_attention(
            reason_code="rule_error",
            detail=f"Rule {rule.name} failed: {outcome.error}",
            owner=self.event.owner_user or self.event.owner_team or workflow_owner(self),
            fingerprint_key=outcome.error_class or "error",
        )


def send_attention(runs: Iterable[Run]) -> None:
    """Ask for people where the runs need them; call inside the transaction that writes them."""
    for run in runs:
        for kwargs in run.attention:
            attention_needed.send(sender=Event, event=run.event, **kwargs)


def workflow_owner(run: Run) -> Any:
    """The workflow's owner team in force (the ownership record, else the version's)."""
    return owner_find(run.owner_lines().owner)


def current_owner(event: Event, compiled: CompiledWorkflow) -> Any:
    """Whoever routing chose, or the workflow's owner in force before routing has run."""
    if event.owner_user is not None or event.owner_team is not None:
        return event.owner_user or event.owner_team
    lines = owner_lines_at(workflow_id=event.workflow_id, compiled=compiled, at=timezone.now())
    return owner_find(lines.owner)


def owner_label(event: Event) -> str:
    return owner_ref(event.owner_user or event.owner_team)
