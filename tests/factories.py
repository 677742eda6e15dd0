"""Every test's data, made the way the services make it.

Workflow versions are stored as the loader stores them (the definition's canonical hash, the
next number, made current); events come in through the ingest service; decisions and cases are
recorded through the engine's own Run, in the shapes the engine writes, and a case is opened by
the engine's attention signal. People, teams and memberships are plain rows.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from audit.canonical import canonical_hash
from exceptions.models import ExceptionCase
from workflows.models import Decision, Event, Membership, Step, Team, Workflow, WorkflowVersion
from workflows.rules import compiled_version
from workflows.services.definitions import new_signing_secret
from workflows.services.engine import FieldProblem
from workflows.services.engine.run import Run, send_attention, workflow_owner
from workflows.services.ingest import event_ingest

PASSWORD = "correct horse battery staple"
# The id of the approval a service runs under, as the approvals app passes it: tests of the
# services below that app (ownership, replays) run them as an approved request would.
APPROVAL = 1

# --- people and teams -------------------------------------------------------------------------


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))
        if create:
            self.save()


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


def team(slug: str = "revenue-ops") -> Team:
    return TeamFactory(slug=slug)


# --- definitions, as the loader stores them (normalized) ---------------------------------------

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
GOOD_LEAD = {"email": "dana@example.com", "company": {"name": "Example GmbH", "size": 820}}


REFUND_APPROVAL: dict[str, Any] = {
    "slug": "refund-approval",
    "name": "Refund approval",
    "owner": "finance-ops",
    "fallback_owners": ["finance-managers"],
    "required_fields": [
        {"path": "order_id", "type": "string"},
        {"path": "amount", "type": "number"},
        {"path": "currency", "type": "string"},
    ],
    "enrich": [{"name": "band", "expr": 'payload.amount > 1000 ? "large" : "small"'}],
    "routes": [{"name": "default", "when": "true", "owner": "finance-ops"}],
    "review": [
        {
            "name": "big-refund",
            "when": "payload.amount > 1000",
            "reason": "Refunds above 1000 need a manager",
            "approver_role": "manager",
        },
    ],
    "action": {"type": "webhook", "url": "http://127.0.0.1:9/payments", "timeout_seconds": 5},
    "retry": {"schedule": [5, 60]},
    "outcome": {"confirm_within": 120},
    "sla": {"acknowledge_within": 3600, "resolve_within": 28800},
}
BIG_REFUND = {"order_id": "A-1001", "amount": 2500, "currency": "EUR"}
# A workflow file as an admin writes it: billing owns it, finance-ops backs it up.
BILLING_DISPUTES_YAML = """\
slug: billing-disputes
name: Billing disputes
owner: billing
fallback_owners: [finance-ops]
routes:
  - {name: default, when: 'true', owner: billing}
action: {type: none}
"""


def refund_approval_definition(*, url: str) -> dict[str, Any]:
    """The demo's refund approval with its webhook: big refunds wait for a manager's review,
    the payment provider confirms each refund."""
    result = copy.deepcopy(REFUND_APPROVAL)
    result["action"]["url"] = url
    return result


def definition(**changes: Any) -> dict[str, Any]:
    """The lead-routing definition with top-level keys replaced; `url` sets the action's URL."""
    result = copy.deepcopy(LEAD_ROUTING)
    url = changes.pop("url", None)
    if url is not None:
        result["action"]["url"] = url
    result.update(copy.deepcopy(changes))
    return result


def queue_definition(**changes: Any) -> dict[str, Any]:
    """Lead routing as the queue's tests triage it: no action, so a replay or a retry finishes at
    once; enterprise leads go to sales-managers, the rest to revenue-ops; huge deals wait."""
    queue = {
        "routes": [
            {
                "name": "enterprise",
                "when": 'context.segment == "enterprise"',
                "owner": "sales-managers",
            },
            {"name": "default", "when": "true", "owner": "revenue-ops"},
        ],
        "review": [
            {"name": "huge-deal", "when": "payload.company.size > 5000", "reason": "Huge deal"}
        ],
        "action": {"type": "none"},
        "retry": {"schedule": [5]},
    }
    return definition(**{**queue, **changes})


def open_definition(slug: str, owner: str, **changes: Any) -> dict[str, Any]:
    """A workflow that takes any payload: no required fields, no rules, everything to `owner`,
    no action and no SLA of its own."""
    plain = {
        "slug": slug,
        "name": slug.replace("-", " ").capitalize(),
        "owner": owner,
        "fallback_owners": [],
        "required_fields": [],
        "enrich": [],
        "routes": [{"name": "default", "when": "true", "owner": owner}],
        "review": [],
        "action": {"type": "none"},
        "retry": {"schedule": [5, 300]},
        "sla": {"acknowledge_within": None, "resolve_within": None},
    }
    return definition(**{**plain, **changes})


def reviewed_refund_definition(**changes: Any) -> dict[str, Any]:
    """Refunds as the demo runs them: above 1000 a review that only a manager may approve; no
    action, so an approved or replayed refund finishes at once."""
    refunds = {
        "required_fields": [{"path": "amount", "type": "number"}],
        "review": [
            {
                "name": "big-refund",
                "when": "payload.amount > 1000",
                "reason": "Refunds above 1000 need a manager",
                "approver_role": "manager",
            }
        ],
    }
    return open_definition("refunds", "finance-ops", **{**refunds, **changes})


# --- workflows, events, decisions and cases ------------------------------------------------------


def version_create(
    definition: dict[str, Any], *, current: bool = True, **workflow_fields: Any
) -> WorkflowVersion:
    """Store a definition as the next version of its workflow (made if it does not exist), with
    the loader's content hash."""
    workflow = WorkflowFactory(slug=definition["slug"], name=definition["name"], **workflow_fields)
    last = workflow.versions.order_by("-number").first()
    version = WorkflowVersion.objects.create(
        workflow=workflow,
        number=(last.number + 1) if last else 1,
        definition=definition,
        content_hash=canonical_hash(definition),
    )
    if current:
        workflow.current_version = version
        workflow.save(update_fields=["current_version"])
    return version


def workflow(definition: dict[str, Any] | None = None) -> Workflow:
    """A workflow whose current version is `definition` (the queue's), with its owners' teams."""
    definition = definition or queue_definition()
    for slug in [definition["owner"], *definition["fallback_owners"]]:
        team(slug)
    return version_create(definition).workflow


def event_create(version: WorkflowVersion, payload: dict[str, Any], **fields: Any) -> Event:
    """An event stored by the ingest service (received, due now), then given `fields`.

    One transaction: a worker woken by the ingest never sees the event before its fields.
    """
    workflow = version.workflow
    if workflow.current_version_id != version.pk:
        raise ValueError("ingest stores events under the workflow's current version only")
    with transaction.atomic():
        event, _ = event_ingest(
            workflow=workflow,
            payload=payload,
            raw_body_hash="",
            idempotency_key=None,
            headers={},
            source="test",
        )
        if fields:
            Event.objects.filter(pk=event.pk).update(**fields)
    return Event.objects.get(pk=event.pk)


def decision_add(event: Event, **decision: Any) -> Decision:
    """A decision recorded on the event by the engine's Run (step, rule, explanation, inputs,
    result, ok), written at once."""
    run = Run(event=event, compiled=compiled_version(event.version), now=timezone.now())
    recorded = run.decide(**decision)
    recorded.save()
    return recorded


# The default owner of a made case: whoever owns its workflow, as for a failed validation.
WORKFLOW_OWNER: Any = object()


@transaction.atomic
def case(
    *,
    reason: str = "validation_failed",
    detail: str = "",
    key: str = "company.size",
    step: str = Step.VALIDATE,
    owner: Any = WORKFLOW_OWNER,
    payload: dict[str, Any] | None = None,
    flow: Workflow | None = None,
    **fields: Any,
) -> ExceptionCase:
    """An open case on a freshly ingested event, opened as the engine opens one.

    For a validation failure the event's Run records the validate step's decision, in its words
    and shape (the field named by `key` missing, whatever the payload holds; no inputs read),
    then asks for attention, and the attention signal opens the case. `owner` is a Team, a
    user, or None for nobody. tests/test_factories.py holds this to what the engine does.
    """
    flow = flow or Workflow.objects.filter(slug="lead-routing").first() or workflow()
    source = event_create(flow.current_version, GOOD_LEAD if payload is None else payload)
    run = Run(event=source, compiled=compiled_version(source.version), now=timezone.now())
    source.step = step
    if reason == "validation_failed":
        expected = [f.type for f in run.compiled.required_fields if f.path == key]
        problem = str(FieldProblem(key, expected[0] if expected else "string"))
        detail = detail or problem
        run.decide(
            step=Step.VALIDATE,
            rule="required_fields",
            result={"valid": False, "problems": [{"path": key, "problem": problem}]},
            ok=False,
            explanation=detail,
        )
    run.needs_attention(
        reason_code=reason,
        detail=detail,
        owner=workflow_owner(run) if owner is WORKFLOW_OWNER else owner,
        fingerprint_key=key,
    )
    Decision.objects.bulk_create(run.decisions)
    source.save(update_fields=["state", "step", "next_attempt_at"])
    send_attention([run])
    opened = ExceptionCase.objects.get(event=source, reason_id=reason)
    if fields:
        ExceptionCase.objects.filter(pk=opened.pk).update(**fields)
        opened.refresh_from_db()
    return opened


# --- the audit trail ------------------------------------------------------------------------


def audit_entries(
    count: int, *, action: str = "test.thing", sealed: bool = True, **fields: Any
) -> list[Any]:
    """`count` entries recorded by the system through the audit service, sealed unless told."""
    from audit.models import AuditEntry
    from audit.services import audit_record, audit_seal_pending

    fields.setdefault("object_type", "thing")
    object_id = fields.pop("object_id", None)
    with transaction.atomic():
        entries = [
            audit_record(
                actor=None, action=action, object_id=i if object_id is None else object_id, **fields
            )
            for i in range(count)
        ]
    if sealed:
        audit_seal_pending()
    return list(AuditEntry.objects.filter(pk__in=[e.pk for e in entries]).order_by("id"))
