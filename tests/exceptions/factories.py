"""Workflows, events and cases for the queue's tests, made the way the engine makes them."""

from __future__ import annotations

import copy
from typing import Any

from django.db import transaction

from exceptions.models import ExceptionCase
from exceptions.services import case_open_or_join
from workflows.models import Decision, Event, Team, Workflow, WorkflowVersion

LEADS = {
    "slug": "lead-routing",
    "name": "Lead routing",
    "owner": "revenue-ops",
    "fallback_owners": ["sales-managers"],
    "required_fields": [
        {"path": "email", "type": "string"},
        {"path": "company.size", "type": "integer"},
    ],
    "enrich": [{"name": "segment", "expr": 'payload.company.size >= 500 ? "enterprise" : "smb"'}],
    "routes": [
        {
            "name": "enterprise",
            "when": 'context.segment == "enterprise"',
            "owner": "sales-managers",
        },
        {"name": "default", "when": "true", "owner": "revenue-ops"},
    ],
    "review": [{"name": "huge-deal", "when": "payload.company.size > 5000", "reason": "Huge deal"}],
    "action": {"type": "none"},
    "retry": {"schedule": [5]},
    "outcome": {"confirm_within": None},
    "sla": {"acknowledge_within": 1800, "resolve_within": 14400},
}

GOOD_LEAD = {"email": "dana@example.com", "company": {"name": "Example GmbH", "size": 820}}


def team(slug: str = "revenue-ops") -> Team:
    found, _ = Team.objects.get_or_create(slug=slug, defaults={"name": slug.replace("-", " ")})
    return found


def workflow(definition: dict[str, Any] | None = None, *, number: int = 1) -> Workflow:
    """A workflow whose current version is `definition` (version `number`)."""
    definition = copy.deepcopy(definition or LEADS)
    for slug in [definition["owner"], *definition["fallback_owners"]]:
        team(slug)
    flow, _ = Workflow.objects.get_or_create(
        slug=definition["slug"],
        defaults={"name": definition["name"], "signing_secret": "whsec_test"},
    )
    version = WorkflowVersion.objects.create(
        workflow=flow,
        number=number,
        definition=definition,
        content_hash=f"{definition['slug']}-{number}",
    )
    flow.current_version = version
    flow.save(update_fields=["current_version"])
    return flow


def event(
    flow: Workflow | None = None, *, payload: dict[str, Any] | None = None, **fields: Any
) -> Event:
    flow = flow or Workflow.objects.filter(slug="lead-routing").first() or workflow()
    values: dict[str, Any] = {
        "workflow": flow,
        "version": flow.current_version,
        "payload": GOOD_LEAD if payload is None else payload,
        "payload_hash": "h",
        "source": "test",
        "state": "needs_attention",
    }
    values.update(fields)
    return Event.objects.create(**values)


@transaction.atomic
def case(
    *,
    reason: str = "validation_failed",
    detail: str = "Missing required field company.size",
    key: str = "company.size",
    step: str = "validate",
    owner: Any = None,
    payload: dict[str, Any] | None = None,
    flow: Workflow | None = None,
    **fields: Any,
) -> ExceptionCase:
    """An open case on a fresh event, through the same service the engine's signal calls."""
    source = event(flow, payload=payload)
    if reason == "validation_failed":
        Decision.objects.create(
            event=source,
            step="validate",
            rule="required_fields",
            version_number=source.version.number,
            result={"missing": [key]},
            ok=False,
            explanation=f"Required field {key} is missing.",
        )
    opened, _ = case_open_or_join(
        event=source,
        reason_code=reason,
        detail=detail,
        owner=owner if owner is not None else team(),
        step=step,
        fingerprint_key=key,
    )
    if fields:
        ExceptionCase.objects.filter(pk=opened.pk).update(**fields)
        opened.refresh_from_db()
    return opened
