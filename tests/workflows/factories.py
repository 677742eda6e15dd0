from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import factory
from django.utils import timezone

from tests.factories import UserFactory
from workflows.models import Event, Membership, Team, Workflow, WorkflowVersion

LEAD_ROUTING: dict[str, Any] = {
    "slug": "lead-routing",
    "name": "Lead routing",
    "owner": "revenue-ops",
    "fallback_owners": ["sales-managers"],
    "required_fields": [
        {"path": "email", "type": "string"},
        {"path": "company.size", "type": "integer"},
    ],
    "enrich": [
        {"name": "segment", "expr": 'payload.company.size >= 500 ? "enterprise" : "smb"'},
    ],
    "routes": [
        {
            "name": "enterprise-emea",
            "when": 'context.segment == "enterprise" && payload.territory == "EMEA"',
            "owner": "emea-enterprise",
        },
        {"name": "default", "when": "true", "owner": "inbound-sdr"},
    ],
    "review": [
        {
            "name": "big-refund",
            "when": "has(payload.amount) && payload.amount > 1000",
            "reason": "Refunds above 1000 need a manager",
        },
    ],
    "action": {"type": "webhook", "url": "http://127.0.0.1:9/crm/leads", "timeout_seconds": 5},
    "retry": {"schedule": [5, 300, 1800, 7200, 18000, 36000]},
    "outcome": {"confirm_within": None},
    "sla": {"acknowledge_within": 1800, "resolve_within": 14400},
}

LEAD_TEAMS = ("revenue-ops", "sales-managers", "emea-enterprise", "inbound-sdr")

ENTERPRISE_EMEA_LEAD = {
    "email": "ada@example.com",
    "company": {"name": "Analytical Engines", "size": 800},
    "territory": "EMEA",
}


def definition(**changes: Any) -> dict[str, Any]:
    """The lead-routing definition with top-level keys replaced; `url` sets the action's URL."""
    result = copy.deepcopy(LEAD_ROUTING)
    url = changes.pop("url", None)
    if url is not None:
        result["action"]["url"] = url
    result.update(copy.deepcopy(changes))
    return result


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda team: team.slug.replace("-", " ").title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    # Long before any time a test travels to.
    valid_from = datetime(2000, 1, 1, tzinfo=UTC)


class WorkflowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workflow
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"workflow-{n}")
    name = factory.LazyAttribute(lambda workflow: workflow.slug.replace("-", " ").title())
    signing_secret = factory.LazyFunction(new_signing_secret)


def version_create(definition: dict[str, Any], *, current: bool = True) -> WorkflowVersion:
    """Store a definition as the next version of its workflow (made if it does not exist)."""
    workflow = WorkflowFactory(slug=definition["slug"], name=definition["name"])
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    last = workflow.versions.order_by("-number").first()
    version = WorkflowVersion.objects.create(
        workflow=workflow,
        number=(last.number + 1) if last else 1,
        definition=definition,
        content_hash=hashlib.sha256(canonical.encode()).hexdigest(),
    )
    if current:
        workflow.current_version = version
        workflow.save(update_fields=["current_version"])
    return version


def event_create(version: WorkflowVersion, payload: dict[str, Any], **fields: Any) -> Event:
    """A received event, due now, as ingest stores it."""
    now = timezone.now()
    values: dict[str, Any] = {
        "workflow": version.workflow,
        "version": version,
        "payload": payload,
        "payload_hash": hashlib.sha256(
            json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest(),
        "source": "test",
        "received_at": now,
        "next_attempt_at": now,
    }
    values.update(fields)
    return Event.objects.create(**values)
