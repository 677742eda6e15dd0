"""Writes of configuration: teams, memberships and workflow definitions, each audited."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.actors import actor_label
from audit.canonical import canonical_hash
from audit.services import audit_record
from workflows.definitions import (
    DefinitionError,
    Owners,
    Problem,
    parse_definition,
)
from workflows.models import Membership, Team, Workflow, WorkflowVersion


def new_signing_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@transaction.atomic
def team_create(*, slug: str, name: str, actor: Any) -> Team:
    team = Team(slug=slug, name=name)
    team.full_clean()
    team.save()
    audit_record(actor=actor, action="team.create", target=team, after={"slug": slug, "name": name})
    return team


@transaction.atomic
def membership_start(*, user: Any, team: Team, role: str, actor: Any) -> Membership:
    """Put a person on a team; an open membership on the same team is ended first."""
    now = timezone.now()
    current = Membership.objects.filter(user=user, team=team, valid_to__isnull=True).first()
    if current is not None:
        if current.role == role:
            return current
        membership_end(membership=current, actor=actor, at=now)
    membership = Membership(user=user, team=team, role=role, valid_from=now)
    membership.full_clean()
    membership.save()
    audit_record(
        actor=actor,
        action="membership.start",
        target=membership,
        after={"user": user.get_username(), "team": team.slug, "role": role},
    )
    return membership


@transaction.atomic
def membership_end(*, membership: Membership, actor: Any, at: Any = None) -> Membership:
    membership.valid_to = at or timezone.now()
    membership.save(update_fields=["valid_to"])
    audit_record(
        actor=actor,
        action="membership.end",
        target=membership,
        before={"user": membership.user.get_username(), "team": membership.team.slug},
        after={"valid_to": membership.valid_to},
    )
    return membership


def known_owners() -> Owners:
    return Owners(
        teams=set(Team.objects.values_list("slug", flat=True)),
        users=set(get_user_model().objects.values_list("username", flat=True)),
    )


@dataclass(frozen=True)
class LoadResult:
    workflow: Workflow
    version: WorkflowVersion
    status: str  # "created", "new_version", "unchanged" or "reactivated"

    def describe(self) -> str:
        slug, number = self.workflow.slug, self.version.number
        return {
            "created": f"{slug}: created, version {number}",
            "new_version": f"{slug}: changed, now version {number}",
            "unchanged": f"{slug}: unchanged, still version {number}",
            "reactivated": f"{slug}: same content as version {number}, which is current again",
        }[self.status]


@transaction.atomic
def workflows_load(*, sources: Sequence[tuple[str, str | bytes]], actor: Any) -> list[LoadResult]:
    """Load (filename, YAML text or bytes) definitions all or nothing.

    Each is parsed, bounded and compiled as the engine will compile it; any problem in any file
    refuses the whole load with every problem named (DefinitionError).

    Same content as the current version: nothing. Changed content: version N+1 becomes
    current. Content identical to an older version makes that version current again.
    """
    owners = known_owners()
    parsed, problems = [], []
    for filename, text in sources:
        try:
            parsed.append(
                (filename, text, parse_definition(text, filename=filename, owners=owners))
            )
        except DefinitionError as exc:
            problems.extend(exc.problems)
    seen: dict[str, str] = {}
    for filename, _, definition in parsed:
        slug = definition["slug"]
        if slug in seen:
            problems.append(Problem(filename, 1, f"slug {slug!r} is also defined in {seen[slug]}"))
        seen[slug] = filename
    if problems:
        raise DefinitionError(problems)
    return [_load_one(filename, text, definition, actor) for filename, text, definition in parsed]


def _load_one(
    filename: str, text: str | bytes, definition: dict[str, Any], actor: Any
) -> LoadResult:
    digest = canonical_hash(definition)
    workflow, created = Workflow.objects.select_for_update().get_or_create(
        slug=definition["slug"],
        defaults={"name": definition["name"], "signing_secret": new_signing_secret()},
    )
    previous = workflow.current_version
    same = WorkflowVersion.objects.filter(workflow=workflow, content_hash=digest).first()
    if same is not None and previous is not None and same.pk == previous.pk:
        return LoadResult(workflow, same, "unchanged")
    if same is not None:
        version, status = same, "reactivated"
    else:
        last = workflow.versions.order_by("-number").first()
        version = WorkflowVersion.objects.create(
            workflow=workflow,
            number=(last.number if last else 0) + 1,
            definition=definition,
            source=text if isinstance(text, str) else text.decode("utf-8"),
            content_hash=digest,
            created_by=actor_label(actor),
        )
        status = "created" if created else "new_version"
    workflow.current_version = version
    workflow.name = definition["name"]
    workflow.save(update_fields=["current_version", "name"])
    audit_record(
        actor=actor,
        action={
            "created": "workflow.create",
            "new_version": "workflow.version_create",
            "reactivated": "workflow.version_activate",
        }[status],
        target=workflow,
        before={"version": previous.number} if previous else None,
        after={"version": version.number, "content_hash": digest, "file": filename},
    )
    return LoadResult(workflow, version, status)
