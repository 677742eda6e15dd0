"""Writes of the console shell: signing in and out, each on the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import login, logout
from django.db import transaction
from django.http import HttpRequest

from audit.services import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@transaction.atomic
def session_login(*, request: HttpRequest, user: User) -> None:
    login(request, user)
    audit_record(actor=user, action="auth.login", target=user)


@transaction.atomic
def session_logout(*, request: HttpRequest) -> None:
    user = request.user
    if user.is_authenticated:
        audit_record(actor=user, action="auth.logout", target=user)
    logout(request)
