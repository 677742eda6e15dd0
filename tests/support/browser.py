"""What browser tests share: signing a person in without going through the login page, and
waiting for swapped-in content to be live."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.test import Client

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page


def sign_in(page: Page, live_server: Any, user: Any) -> None:
    """A session made by Django itself, handed to the browser (the login page has its own test)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
    )


def settled(swapped: Locator) -> None:
    """Wait until htmx has processed content it swapped in: it marks new elements htmx-added
    and attaches their triggers only when they settle, so a change made before then (as a test
    makes one, within milliseconds) fires nothing."""
    from playwright.sync_api import expect

    expect(swapped).not_to_have_class(re.compile(r"\bhtmx-added\b"))
