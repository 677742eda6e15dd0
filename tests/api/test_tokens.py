"""API tokens: the services, the management commands, and what the trail keeps."""

from __future__ import annotations

import getpass
import hashlib
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from audit.actors import Actor
from audit.models import AuditEntry
from tests.support.api import Api
from workflows.models import ApiToken, Workflow
from workflows.services.tokens import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db

ADMIN = Actor(kind="system", label="tests")


def create(*args: str) -> str:
    out = io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_create_api_token_prints_a_token_that_authenticates_and_stores_only_its_hash(
    api: Api, workflow: Workflow
) -> None:
    plaintext = create("--name", "crm", "--workflow", "lead-routing")

    token = ApiToken.objects.get(name="crm")
    assert plaintext.startswith("hnd_")
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert token.prefix == plaintext[:12]
    assert list(token.workflows.values_list("slug", flat=True)) == ["lead-routing"]
    stored = ApiToken.objects.filter(name="crm").values().get()
    assert plaintext not in {str(value) for value in stored.values()}
    assert api.as_token(plaintext).post("/workflows/lead-routing/events", {}).status_code == 202


def test_create_api_token_for_all_workflows(workflow: Workflow) -> None:
    create("--name", "ops", "--all-workflows")

    assert ApiToken.objects.get(name="ops").all_workflows is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "x", "--workflow", "no-such"], "Unknown workflow: no-such"),
        (["--name", "x"], "at least one workflow"),
        (["--name", "x", "--workflow", "lead-routing", "--all-workflows"], "not both"),
        (["--name", " ", "--workflow", "lead-routing"], "needs a name"),
    ],
)
def test_create_api_token_refuses_bad_requests_clearly(
    workflow: Workflow, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        create(*args)
    assert not ApiToken.objects.exists()


def test_create_api_token_refuses_a_duplicate_name(workflow: Workflow) -> None:
    create("--name", "crm", "--workflow", "lead-routing")

    with pytest.raises(CommandError, match="already exists"):
        create("--name", "crm", "--workflow", "lead-routing")
    assert ApiToken.objects.count() == 1


def test_revoke_api_token_makes_the_token_fail(api: Api, workflow: Workflow) -> None:
    plaintext = create("--name", "crm", "--workflow", "lead-routing")

    call_command("revoke_api_token", "--name", "crm", stdout=io.StringIO())

    assert ApiToken.objects.get(name="crm").revoked_at is not None
    assert api.as_token(plaintext).post("/workflows/lead-routing/events", {}).status_code == 401
    with pytest.raises(CommandError, match="already revoked"):
        call_command("revoke_api_token", "--name", "crm", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no token named"):
        call_command("revoke_api_token", "--name", "nope", stdout=io.StringIO())


def test_the_commands_are_audited_as_the_person_at_the_shell(workflow: Workflow) -> None:
    plaintext = create("--name", "crm", "--workflow", "lead-routing")
    call_command("revoke_api_token", "--name", "crm", stdout=io.StringIO())

    created = AuditEntry.objects.get(action="api_token.create")
    revoked = AuditEntry.objects.get(action="api_token.revoke")
    for entry in (created, revoked):
        assert entry.actor_kind == "system"
        assert entry.actor_label == f"cli:{getpass.getuser()}"
        assert entry.object_type == "workflows.apitoken"
    assert created.after["name"] == "crm"
    assert created.after["workflows"] == ["lead-routing"]
    assert revoked.before["revoked_at"] is None
    assert revoked.after["revoked_at"] is not None
    token_hash = ApiToken.objects.get(name="crm").token_hash
    for entry in AuditEntry.objects.all():
        text = str([entry.before, entry.after, entry.reason])
        assert plaintext not in text
        assert token_hash not in text


def test_token_services_audit_a_person_as_the_actor(
    workflow: Workflow, make_user: Callable[..., Any]
) -> None:
    admin = make_user("admin", username="ines")

    token, _ = api_token_create(name="crm", workflow_slugs=["lead-routing"], actor=admin)
    api_token_revoke(token=token, actor=admin)

    entries = AuditEntry.objects.filter(object_id=str(token.pk)).order_by("id")
    assert [e.action for e in entries] == ["api_token.create", "api_token.revoke"]
    assert {e.actor_label for e in entries} == {"ines"}
    assert token.created_by == "ines"


def test_only_the_exact_token_authenticates_not_one_sharing_its_shown_prefix(
    api: Api, workflow: Workflow
) -> None:
    token, plaintext = api_token_create(name="crm", workflow_slugs=["lead-routing"], actor=ADMIN)
    # The prefix is shown in the console; the rest of the token is the secret.
    forged = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    assert forged[: len(token.prefix)] == token.prefix

    assert api.as_token(forged).post("/workflows/lead-routing/events", {}).status_code == 401
    assert api.as_token(plaintext).post("/workflows/lead-routing/events", {}).status_code == 202
    api_token_revoke(token=token, actor=ADMIN)
    assert api.as_token(plaintext).post("/workflows/lead-routing/events", {}).status_code == 401
