from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings

from audit.models import AuditEntry
from console.proxies import client_address
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_four_roles_exist_with_their_permissions() -> None:
    def perms(role: str) -> set[str]:
        return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    assert perms("operator") >= {"view_auditentry"}
    assert "export_auditentry" not in perms("operator")
    assert perms("auditor") >= {"view_auditentry", "export_auditentry", "verify_auditentry"}
    assert perms("admin") >= {"verify_auditentry", "change_user"}
    assert not any(p.startswith(("add_", "change_", "delete_")) for p in perms("auditor"))


@pytest.mark.parametrize("path", ["/", "/admin/"])
def test_pages_send_anonymous_visitors_to_login(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_login_page_has_labelled_fields(client) -> None:
    response = client.get("/accounts/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html


def test_login_lands_on_the_overview_with_roles_in_the_header(client, operator) -> None:
    response = client.post(
        "/accounts/login/", {"username": "olivia", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    html = response.content.decode()
    assert '<span class="role role-operator">operator</span>' in html


def test_login_and_logout_are_on_the_audit_trail(client, operator) -> None:
    client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    client.post("/accounts/logout/")
    entries = list(AuditEntry.objects.order_by("id").values("action", "actor_label", "actor_roles"))
    assert entries == [
        {"action": "auth.login", "actor_label": "olivia", "actor_roles": ["operator"]},
        {"action": "auth.logout", "actor_label": "olivia", "actor_roles": ["operator"]},
    ]


def test_logout_needs_a_post(client, operator) -> None:
    client.force_login(operator)
    assert client.get("/accounts/logout/").status_code == 405


def test_wrong_password_five_times_in_a_row_is_throttled(client, operator) -> None:
    for _ in range(4):
        response = client.post("/accounts/login/", {"username": "olivia", "password": "wrong"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    fifth = client.post("/accounts/login/", {"username": "olivia", "password": "wrong"})
    assert fifth.status_code == 429
    # Locked: even the right password is refused until the cool-off passes.
    sixth = client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert sixth.status_code == 429
    assert "Too many failed sign-ins" in sixth.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_success_resets_the_failure_count(client, operator) -> None:
    for _ in range(4):
        client.post("/accounts/login/", {"username": "olivia", "password": "wrong"})
    assert (
        client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD}).status_code
        == 302
    )
    client.post("/accounts/logout/")
    for _ in range(4):
        assert (
            client.post("/accounts/login/", {"username": "olivia", "password": "wrong"}).status_code
            == 200
        )


def test_overview_shows_audit_activity_to_roles_that_may_read_it(
    client, auditor, make_user
) -> None:
    client.force_login(auditor)
    assert "Recent activity" in client.get("/").content.decode()
    nobody = make_user(username="norole")
    client.force_login(nobody)
    html = client.get("/").content.decode()
    assert "Recent activity" not in html
    assert "no role" in html


def test_overview_counts_the_queue_views_and_recent_events(
    client, operator, django_assert_max_num_queries
) -> None:
    from tests import factories

    flow = factories.workflow()
    mine = factories.case(flow=flow)
    mine.owner_user = operator
    mine.save()
    factories.case(flow=flow)
    client.force_login(operator)
    response = client.get("/")
    html = response.content.decode()
    counts = {view.name: view.count for view in response.context["queue"]}
    assert counts == {
        "My open": 1,
        "Unassigned": 1,
        "No owner": 0,
        "Breached SLA": 0,
        "All open": 2,
    }
    assert 'owner=me">My open</a>' in html
    assert "Events, last 24 hours" in html
    with django_assert_max_num_queries(25):
        client.get("/")


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_a_lock_out_holds_the_client_not_the_proxy(client, operator) -> None:
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    attacker = {**proxy, "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    owner = {**proxy, "HTTP_X_FORWARDED_FOR": "198.51.100.20"}
    for _ in range(5):
        client.post("/accounts/login/", {"username": "olivia", "password": "wrong"}, **attacker)
    locked = client.post(
        "/accounts/login/", {"username": "olivia", "password": PASSWORD}, **attacker
    )
    assert locked.status_code == 429
    # The same account from another client behind the same proxy still signs in.
    response = client.post(
        "/accounts/login/", {"username": "olivia", "password": PASSWORD}, **owner
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_without_a_trusted_proxy_a_forged_forwarded_for_is_ignored(client, operator) -> None:
    for n in range(5):
        forged = {"HTTP_X_FORWARDED_FOR": f"198.51.100.{n}"}
        client.post("/accounts/login/", {"username": "olivia", "password": "wrong"}, **forged)
    fresh = {"HTTP_X_FORWARDED_FOR": "198.51.100.99"}
    response = client.post(
        "/accounts/login/", {"username": "olivia", "password": PASSWORD}, **fresh
    )
    assert response.status_code == 429


@pytest.mark.parametrize(
    ("proxies", "forwarded", "client"),
    [
        (0, "198.51.100.7", "10.0.0.2"),
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.1", "198.51.100.7"),
        (2, "198.51.100.7", "10.0.0.2"),
        (1, "not-an-address", "10.0.0.2"),
        (1, "", "10.0.0.2"),
    ],
)
def test_the_client_is_the_address_the_trusted_proxies_forwarded(
    rf, proxies: int, forwarded: str, client: str
) -> None:
    request = rf.post("/accounts/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(TRUSTED_PROXY_COUNT=proxies):
        assert client_address(request) == client
