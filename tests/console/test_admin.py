from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_admin_sign_in_goes_through_the_one_audited_login_page(client) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"


def test_changing_a_persons_roles_in_admin_is_audited(client, make_user) -> None:
    admin_person = make_user("admin", username="ada", is_staff=True)
    target = make_user("operator", username="olivia")
    client.force_login(admin_person)
    response = client.post(
        f"/admin/auth/user/{target.pk}/change/",
        {
            "username": "olivia",
            "first_name": target.first_name,
            "last_name": target.last_name,
            "email": "",
            "is_active": "on",
            "groups": [Group.objects.get(name="manager").pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(action="user.change")
    assert entry.actor_label == "ada"
    assert entry.actor_roles == ["admin"]
    assert entry.before["groups"] == ["operator"]
    assert entry.after["groups"] == ["manager"]
    assert (entry.object_type, entry.object_id) == ("auth.user", str(target.pk))


def test_an_operator_cannot_reach_admin(client, operator) -> None:
    client.force_login(operator)
    response = client.get("/admin/auth/user/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]
