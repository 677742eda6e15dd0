"""What browser tests share: signing a person in without going through the login page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.test import Client

if TYPE_CHECKING:
    from playwright.sync_api import Page


def sign_in(page: Page, live_server: Any, user: Any) -> None:
    """A session made by Django itself, handed to the browser (the login page has its own test)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
    )
