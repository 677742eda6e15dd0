"""Writes of the console shell: signing in and out (and failing to), each on the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.db import transaction
from django.http import HttpRequest

from audit.actors import Actor
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


@transaction.atomic
def session_login_failed(*, request: HttpRequest, username: str) -> None:
    """A refused sign-in; and, when this failure is the one that locks the pair out, the lock.

    Nobody is signed in, so the actor is the address it came from. django-axes has already
    counted the failure on the request (axes_failures_since_start) and says whether the
    username and address are now locked out (axes_locked_out).
    """
    address = str(getattr(request, "axes_ip_address", "") or request.META.get("REMOTE_ADDR", ""))
    actor = Actor(kind="anonymous", label=f"anonymous ({address or 'unknown address'})")
    failures = getattr(request, "axes_failures_since_start", None)
    locked = bool(getattr(request, "axes_locked_out", False))
    # The account tried, when there is one: an unknown username is still an attempt.
    user = get_user_model().objects.filter(username=username).first()
    attempt = {"username": username, "address": address, "failures": failures, "locked_out": locked}
    audit_record(
        actor=actor, action="auth.login_failed", target=user, object_type="auth.user", after=attempt
    )
    # django-axes counts failures during a lock-out too (each extends it): the lock-out began
    # with the failure that reached the limit.
    if locked and failures == settings.AXES_FAILURE_LIMIT:
        audit_record(
            actor=actor,
            action="auth.lockout",
            target=user,
            object_type="auth.user",
            after=attempt,
            reason=f"{failures} failed sign-ins in a row",
        )


@transaction.atomic
def password_change_recorded(*, actor: Any, target: User, reason: str) -> None:
    """A password set outside the console's own pages (admin, manage.py): never the password."""
    audit_record(
        actor=actor,
        action="user.password_change",
        target=target,
        after={"usable_password": target.has_usable_password()},
        reason=reason,
    )
