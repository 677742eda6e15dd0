"""Every way a person changes state outside the console's own pages leaves an entry.

One row per path: the admin's forms and actions, the management commands an operator of the
machine runs, and refused sign-ins. Each row does the thing for real and names the entry it
must leave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEntry
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a much longer new passphrase 42"


@dataclass
class World:
    client: Client
    admin: Any
    olivia: Any
    make_user: Callable[..., Any]


def perm_ids(*codenames: str) -> list[int]:
    return list(Permission.objects.filter(codename__in=codenames).values_list("pk", flat=True))


def user_form(user: Any, **changes: Any) -> dict[str, Any]:
    form = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "groups": list(user.groups.values_list("pk", flat=True)),
        "user_permissions": [],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    form.update(changes)
    return form


def admin_sets_someones_password(w: World) -> AuditEntry:
    response = w.client.post(
        f"/admin/auth/user/{w.olivia.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    return AuditEntry.objects.get(action="user.password_change", object_id=str(w.olivia.pk))


def admin_changes_own_password(w: World) -> AuditEntry:
    response = w.client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    return AuditEntry.objects.get(action="user.password_change", object_id=str(w.admin.pk))


def admin_deletes_selected_users(w: World) -> AuditEntry:
    doomed = [w.make_user(username="temp1"), w.make_user(username="temp2")]
    response = w.client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [u.pk for u in doomed], "post": "yes"},
    )
    assert response.status_code == 302
    assert not get_user_model().objects.filter(username__startswith="temp").exists()
    entries = AuditEntry.objects.filter(action="user.delete").order_by("id")
    assert [e.before["username"] for e in entries] == ["temp1", "temp2"]
    return entries[0]


def admin_creates_a_group_with_permissions(w: World) -> AuditEntry:
    response = w.client.post(
        "/admin/auth/group/add/",
        {"name": "night-shift", "permissions": perm_ids("view_event", "view_exceptioncase")},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = AuditEntry.objects.get(action="group.create")
    assert entry.after["permissions"] == [
        "exceptions.view_exceptioncase",
        "workflows.view_event",
    ]
    return entry


def admin_changes_a_roles_permissions(w: World) -> AuditEntry:
    auditor = Group.objects.get(name="auditor")
    before = list(auditor.permissions.values_list("pk", flat=True))
    response = w.client.post(
        f"/admin/auth/group/{auditor.pk}/change/",
        {"name": "auditor", "permissions": [*before, *perm_ids("triage_exceptioncase")]},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = AuditEntry.objects.get(action="group.change")
    assert "exceptions.triage_exceptioncase" not in entry.before["permissions"]
    assert "exceptions.triage_exceptioncase" in entry.after["permissions"]
    return entry


def admin_grants_a_person_a_permission_directly(w: World) -> AuditEntry:
    response = w.client.post(
        f"/admin/auth/user/{w.olivia.pk}/change/",
        user_form(w.olivia, user_permissions=perm_ids("add_apitoken")),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = AuditEntry.objects.get(action="user.change")
    assert (entry.before["user_permissions"], entry.after["user_permissions"]) == (
        [],
        ["workflows.add_apitoken"],
    )
    return entry


def createsuperuser_runs(w: World, monkeypatch: pytest.MonkeyPatch) -> AuditEntry:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW_PASSWORD)
    call_command("createsuperuser", username="root", email="root@example.com", interactive=False)
    entry = AuditEntry.objects.get(action="user.create")
    assert entry.after["is_superuser"] is True
    assert entry.after["username"] == "root"
    return entry


def changepassword_runs(w: World, monkeypatch: pytest.MonkeyPatch) -> AuditEntry:
    # The command reads the new password twice from the terminal.
    monkeypatch.setattr(
        "django.contrib.auth.management.commands.changepassword.getpass.getpass",
        lambda prompt="": NEW_PASSWORD,
    )
    call_command("changepassword", "olivia")
    w.olivia.refresh_from_db()
    assert w.olivia.check_password(NEW_PASSWORD)
    return AuditEntry.objects.get(action="user.password_change")


def axes_reset_runs(w: World) -> AuditEntry:
    for _ in range(2):
        Client().post("/accounts/login/", {"username": "olivia", "password": "wrong"})
    assert AccessAttempt.objects.exists()
    call_command("axes_reset")
    assert not AccessAttempt.objects.exists()
    entry = AuditEntry.objects.get(action="auth.locks_reset")
    assert entry.after == {"removed": 1}
    assert entry.before["attempts"][0]["username"] == "olivia"
    return entry


def a_sign_in_fails(w: World) -> AuditEntry:
    Client().post("/accounts/login/", {"username": "olivia", "password": "wrong"})
    entry = AuditEntry.objects.get(action="auth.login_failed")
    assert entry.after["username"] == "olivia"
    assert entry.after["locked_out"] is False
    assert (entry.object_type, entry.object_id) == ("auth.user", str(w.olivia.pk))
    return entry


def a_pair_is_locked_out(w: World) -> AuditEntry:
    stranger = Client()
    for _ in range(5):
        stranger.post("/accounts/login/", {"username": "olivia", "password": "wrong"})
    refused = stranger.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert refused.status_code == 429
    assert AuditEntry.objects.filter(action="auth.login_failed").count() == 6
    entry = AuditEntry.objects.get(action="auth.lockout")
    assert entry.after["failures"] == 5
    return entry


PATHS: list[tuple[str, Callable[..., AuditEntry], str, str]] = [
    # (what a person does, how, the action it must leave, whom the entry names as actor)
    ("admin: set someone's password", admin_sets_someones_password, "user.password_change", "ada"),
    ("admin: change own password", admin_changes_own_password, "user.password_change", "ada"),
    ("admin: delete selected users", admin_deletes_selected_users, "user.delete", "ada"),
    ("admin: create a group", admin_creates_a_group_with_permissions, "group.create", "ada"),
    ("admin: edit a role's permissions", admin_changes_a_roles_permissions, "group.change", "ada"),
    ("admin: a person's own permissions", admin_grants_a_person_a_permission_directly,
     "user.change", "ada"),
    ("manage.py createsuperuser", createsuperuser_runs, "user.create", "manage.py createsuperuser"),
    ("manage.py changepassword", changepassword_runs, "user.password_change",
     "manage.py changepassword"),
    ("manage.py axes_reset", axes_reset_runs, "auth.locks_reset", "manage.py axes_reset"),
    ("a failed sign-in", a_sign_in_fails, "auth.login_failed", "anonymous (127.0.0.1)"),
    ("a lock-out", a_pair_is_locked_out, "auth.lockout", "anonymous (127.0.0.1)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "expected_action", "actor"),
    [pytest.param(how, action, actor, id=name) for name, how, action, actor in PATHS],
)
def test_every_path_that_changes_state_leaves_an_entry(
    path: Callable[..., AuditEntry],
    expected_action: str,
    actor: str,
    client: Client,
    make_user: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = make_user("admin", username="ada", is_staff=True, is_superuser=True)
    olivia = make_user("operator", username="olivia")
    client.force_login(admin)
    world = World(client=client, admin=admin, olivia=olivia, make_user=make_user)
    wants_monkeypatch = "monkeypatch" in path.__code__.co_varnames[: path.__code__.co_argcount]
    entry = path(world, monkeypatch) if wants_monkeypatch else path(world)
    assert entry.action == expected_action
    assert entry.actor_label.startswith(actor)
    assert "password" not in str(entry.after).replace("usable_password", "")
