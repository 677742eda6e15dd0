"""Writes of workflow ownership: set in the console, or followed from a definition load.

Which wins when they disagree (README "Who owns a workflow", and the ownership panel):

- A change made in the console stays in force until a load creates a NEW version whose owner
  lines (`owner`, `fallback_owners`) differ from those of the version it replaces: that is
  someone changing the owners in the file, and the file then wins.
- A load that leaves the owner lines as they were (only rules changed), or that makes an older
  version current again (an old file loaded again), keeps the console's ownership, and the
  load says so in its output and on the audit trail.
- While no console change is in force, ownership follows the current version's owner lines.

Each change ends the row in force and starts a new one, so history is never overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actors import actor_label
from audit.services import audit_record
from workflows.definitions import MAX_ITEMS
from workflows.four_eyes import WORKFLOW_OWNERSHIP_CHANGE, WORKFLOW_ROUTING_CHANGE, ApprovalRequired
from workflows.models import OwnershipSource, Team, Workflow, WorkflowOwnership, WorkflowVersion
from workflows.ownership import ownership_in_force
from workflows.services.teams import OwnersRefused

Lines = tuple[str, tuple[str, ...]]

# The rule above, as the ownership panel prints it (the README says the same).
PRECEDENCE = (
    "A change made in the console stays in force until a load creates a new version whose "
    "owner lines (owner, fallback_owners) differ from those of the version it replaces: then "
    "the file wins.",
    "A load that changes only rules, or that makes an older version current again (an old "
    "file loaded again), keeps the console's ownership, and says so.",
    "While no console change is in force, ownership follows the current version's owner lines.",
)


def definition_lines(definition: dict[str, Any]) -> Lines:
    return definition["owner"], tuple(definition.get("fallback_owners") or ())


def _check_lines(owner: str, fallbacks: Sequence[str]) -> None:
    known = {t.slug: t for t in Team.objects.filter(slug__in=[owner, *fallbacks])}
    if owner not in known:
        raise OwnersRefused(f"There is no team {owner!r} to own the workflow.")
    if not known[owner].active:
        raise OwnersRefused(f"Team {owner} is inactive: it cannot own a workflow.")
    for slug in fallbacks:
        if slug not in known:
            raise OwnersRefused(f"There is no team {slug!r} for the fallback chain.")
    if owner in fallbacks:
        raise OwnersRefused(f"Team {owner} owns the workflow: it cannot be its own fallback too.")
    if len(set(fallbacks)) != len(fallbacks):
        raise OwnersRefused("A team appears twice in the fallback chain.")
    if len(fallbacks) > MAX_ITEMS["fallback_owners"]:
        raise OwnersRefused(f"At most {MAX_ITEMS['fallback_owners']} fallback teams.")


def _start(
    *,
    workflow: Workflow,
    lines: Lines,
    source: str,
    version: WorkflowVersion | None,
    actor: Any,
    reason: str,
    now: datetime,
) -> WorkflowOwnership:
    """End the row in force (if any) at `now` and start one with `lines`; audit the change."""
    current = (
        WorkflowOwnership.objects.select_for_update()
        .filter(workflow=workflow, valid_to__isnull=True)
        .first()
    )
    if current is not None:
        current.valid_to = now
        current.save(update_fields=["valid_to"])
    owner, fallbacks = lines
    record = WorkflowOwnership.objects.create(
        workflow=workflow,
        owner=owner,
        fallback_owners=list(fallbacks),
        valid_from=now,
        source=source,
        version=version,
        set_by=actor_label(actor),
        reason=reason,
    )
    audit_record(
        actor=actor,
        action="workflow.ownership_set",
        target=workflow,
        before=_snapshot(current),
        after={**(_snapshot(record) or {}), "record": record.pk},
        reason=reason,
    )
    return record


def _snapshot(record: WorkflowOwnership | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "owner": record.owner,
        "fallback_owners": list(record.fallback_owners),
        "source": record.source,
    }


@transaction.atomic
def workflow_ownership_set(
    *,
    workflow: Workflow,
    owner: str,
    fallback_owners: Sequence[str],
    actor: Any,
    reason: str,
    approval_id: int | None = None,
) -> WorkflowOwnership:
    """Set a workflow's owner team and ordered fallback chain from the console, with a reason.

    It stays in force over later loads of definitions that do not change the owner lines.
    It runs only under a second person's approval (approval_id); without one, a change that
    could be made raises ApprovalRequired: of the ownership when the owner team changes, of
    the routing when only the fallback chain does.
    """
    if not reason.strip():
        raise OwnersRefused("Say why the ownership changes: a reason is required.")
    fallbacks = tuple(slug for slug in fallback_owners if slug)
    _check_lines(owner, fallbacks)
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    current = ownership_in_force(workflow_id=workflow.pk, at=timezone.now())
    if current is not None and current.lines == (owner, fallbacks):
        raise OwnersRefused("The workflow already has exactly this owner and fallback chain.")
    if approval_id is None:
        owner_changes = current is None or current.lines[0] != owner
        raise ApprovalRequired(
            WORKFLOW_OWNERSHIP_CHANGE if owner_changes else WORKFLOW_ROUTING_CHANGE,
            f"A change of who owns {workflow.slug} takes effect only once a second person "
            "approves it.",
        )
    return _start(
        workflow=workflow,
        lines=(owner, fallbacks),
        source=OwnershipSource.CONSOLE,
        version=workflow.current_version,
        actor=actor,
        reason=reason.strip(),
        now=timezone.now(),
    )


def ownership_follow_load(
    *,
    workflow: Workflow,
    previous: WorkflowVersion | None,
    version: WorkflowVersion,
    new_version: bool,
    actor: Any,
) -> str:
    """After a load made `version` current: start ownership from it, or say why not.

    Call inside the load's transaction, with the workflow row locked. Returns what happened to
    the ownership, in words for the load's output ("" when nothing changed).
    """
    lines = definition_lines(version.definition)
    now = timezone.now()
    current = ownership_in_force(workflow_id=workflow.pk, at=now)
    if current is not None and current.lines == lines:
        return ""
    changed_in_file = previous is None or definition_lines(previous.definition) != lines
    if current is not None and current.source == OwnershipSource.CONSOLE:
        if not (new_version and changed_in_file):
            when = current.valid_from.strftime("%Y-%m-%d %H:%M")
            kept = (
                f"ownership kept as set in the console by {current.set_by} on {when} UTC "
                f"({_words(current.lines)}); the file's owner lines ({_words(lines)}) are not "
                "applied, because they are not a change made in the file"
            )
            audit_record(
                actor=actor,
                action="workflow.ownership_kept",
                target=workflow,
                before=_snapshot(current),
                after={"file_owner": lines[0], "file_fallback_owners": list(lines[1])},
                reason=kept,
            )
            return kept
        reason = (
            f"version {version.number} changes the owner lines; they replace the ownership "
            f"set in the console by {current.set_by}"
        )
    else:
        reason = f"owner lines of version {version.number}"
    _start(
        workflow=workflow,
        lines=lines,
        source=OwnershipSource.DEFINITION,
        version=version,
        actor=actor,
        reason=reason,
        now=now,
    )
    return "" if current is None else f"owners now {_words(lines)} ({reason})"


def _words(lines: Lines) -> str:
    owner, fallbacks = lines
    return owner + (f" then {', '.join(fallbacks)}" if fallbacks else ", no fallback")
