"""Writes of workflow definitions, each load audited (teams and memberships: services.teams)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from audit.actors import actor_label
from audit.canonical import canonical_hash
from audit.services import audit_record
from workflows.definitions import (
    DefinitionError,
    Owners,
    Problem,
    parse_definition,
)
from workflows.models import Team, Workflow, WorkflowVersion
from workflows.services.ownership import ownership_follow_load


def new_signing_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def known_owners() -> Owners:
    return Owners(
        teams=set(Team.objects.values_list("slug", flat=True)),
        users=set(get_user_model().objects.values_list("username", flat=True)),
        roles=set(Group.objects.values_list("name", flat=True)),
    )


@dataclass(frozen=True)
class LoadResult:
    workflow: Workflow
    version: WorkflowVersion
    status: str  # "created", "new_version", "unchanged" or "reactivated"
    ownership: str = ""  # what the load did to the workflow's ownership, if it is news

    def describe(self) -> str:
        slug, number = self.workflow.slug, self.version.number
        said = {
            "created": f"{slug}: created, version {number}",
            "new_version": f"{slug}: changed, now version {number}",
            "unchanged": f"{slug}: unchanged, still version {number}",
            "reactivated": f"{slug}: same content as version {number}, which is current again",
        }[self.status]
        return f"{said}; {self.ownership}" if self.ownership else said


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
        version, status = same, "unchanged"
    elif same is not None:
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
    if status != "unchanged":
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
    ownership = ownership_follow_load(
        workflow=workflow,
        previous=previous,
        version=version,
        new_version=status in ("created", "new_version"),
        actor=actor,
    )
    return LoadResult(workflow, version, status, ownership)
