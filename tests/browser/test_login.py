from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, UserFactory

# serialized_rollback: the role groups come from a data migration and must survive flushes.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.mark.parametrize("role", ["operator", "manager", "admin", "auditor"])
def test_each_role_signs_in_and_sees_its_role_in_the_header(
    live_server, page: Page, role: str
) -> None:
    UserFactory(username=f"demo-{role}", roles=[role])
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    page.get_by_label("Username").fill(f"demo-{role}")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_test_id("roles")).to_have_text(role)


def test_a_wrong_password_shows_an_error_next_to_the_form(live_server, page: Page) -> None:
    UserFactory(username="someone", roles=["operator"])
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("someone")
    page.get_by_label("Password").fill("not it")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page.get_by_label("Username")).to_have_value("someone")


def test_keyboard_focus_is_visible(live_server, page: Page) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.id || document.activeElement.className")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused
    assert outline != "none"
