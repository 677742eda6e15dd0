"""manage.py workflow_owner: a script asks for an ownership change; a second person approves it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEntry
from exceptions.approvals.models import ApprovalRequest
from tests.factories import BILLING_DISPUTES_YAML, TeamFactory, UserFactory
from tests.support.approvals import approve
from workflows.models import Workflow
from workflows.ownership import ownership_in_force
from workflows.services.definitions import workflows_load

pytestmark = pytest.mark.django_db


@pytest.fixture
def disputes() -> Workflow:
    for slug in ("billing", "finance-ops", "support"):
        TeamFactory(slug=slug)
    workflows_load(sources=[("b.yaml", BILLING_DISPUTES_YAML)], actor=None)
    return Workflow.objects.get(slug="billing-disputes")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("workflow_owner", *args, stdout=out)
    return out.getvalue()


def lines(workflow: Workflow) -> tuple[str, list[str]]:
    record = ownership_in_force(workflow_id=workflow.pk, at=timezone.now())
    assert record is not None
    return record.owner, list(record.fallback_owners)


def test_a_change_asked_from_a_script_waits_for_a_second_person(disputes) -> None:
    admin = UserFactory(username="ada", roles=["admin"])
    manager = UserFactory(username="marcus", roles=["manager"])
    assert "owner billing; fallback finance-ops" in run("show", "billing-disputes")

    said = run(
        "set", "billing-disputes", "--owner", "support", "--fallback", "billing, finance-ops",
        "--reason", "support takes disputes", "--requested-by", "ada",
    )  # fmt: skip

    approval = ApprovalRequest.objects.get()
    assert f"/approvals/{approval.pk}/" in said
    assert (approval.requested_by, approval.state) == (admin, "pending")
    assert lines(disputes) == ("billing", ["finance-ops"])  # nothing moved yet

    approve(approval, by=manager)

    assert lines(disputes) == ("support", ["billing", "finance-ops"])
    change = AuditEntry.objects.get(action="workflow.ownership_set", approval_id=approval.pk)
    assert change.reason == "support takes disputes"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("show", "nope"), "There is no workflow 'nope'"),
        (("set", "billing-disputes", "--owner", "ghosts", "--reason", "r",
          "--requested-by", "ada"), "ghosts"),
        (("set", "billing-disputes", "--owner", "billing", "--fallback", "finance-ops",
          "--reason", "r", "--requested-by", "ada"), "already has exactly this owner"),
        (("set", "billing-disputes", "--owner", "support", "--reason", "  ",
          "--requested-by", "ada"), "reason"),
        (("set", "billing-disputes", "--owner", "support", "--reason", "r",
          "--requested-by", "nobody"), "no active person called 'nobody'"),
    ],
)  # fmt: skip
def test_the_workflow_owner_command_refuses_with_the_reason(disputes, args, says) -> None:
    UserFactory(username="ada", roles=["admin"])
    with pytest.raises(CommandError, match=says):
        run(*args)
    assert not ApprovalRequest.objects.exists()
