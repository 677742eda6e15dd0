from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, login_required
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from audit import selectors as audit_selectors
from console import health
from console import selectors as console_selectors
from console.roles import ADMIN, MANAGER, OPERATOR, role_names
from console.services import (
    password_change_recorded,
    session_login,
    session_login_failed,
    session_logout,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@require_GET
@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """The numbers each of the person's roles needs first, then the queue, events and system."""
    now = timezone.now()
    roles = role_names(request.user)
    context: dict[str, object] = {
        "checks": health.system_checks(),
    }
    if OPERATOR in roles and request.user.has_perm("exceptions.triage_exceptioncase"):
        context["my_work"] = console_selectors.queue_counts(
            request=request, views=console_selectors.MY_WORK
        )
    if MANAGER in roles:
        context["manager"] = console_selectors.manager_numbers(request=request, now=now)
    if ADMIN in roles:
        context["admin"] = console_selectors.admin_numbers(now=now)
    if request.user.has_perm("exceptions.view_exceptioncase"):
        context["queue"] = console_selectors.queue_counts(request=request)
    if request.user.has_perm("workflows.view_event"):
        context["recent"] = console_selectors.recent_events(now=now)
    if request.user.has_perm("audit.view_auditentry"):
        context["chain"] = audit_selectors.chain_status()
        context["recent_entries"] = audit_selectors.recent_entries(limit=8)
    return render(request, "console/overview.html", context)


class LoginView(auth_views.LoginView):
    """Django's login page, with the sign-in recorded on the audit trail."""

    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        session_login(request=self.request, user=form.get_user())
        return HttpResponseRedirect(self.get_success_url())

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        username = str(form.data.get("username", ""))[:150]
        if username:
            session_login_failed(request=self.request, username=username)
        return super().form_invalid(form)


login_view = login_not_required(LoginView.as_view())


@login_required
def admin_password_change(request: HttpRequest) -> HttpResponse:
    """The admin's "change my password" page, with the change on the audit trail."""
    user = cast("User", request.user)  # login_required: a person
    with transaction.atomic():
        before = user.password
        response = admin.site.admin_view(admin.site.password_change)(request)
        # The form sets the new password on this same user object.
        if user.password != before:
            password_change_recorded(actor=user, target=user, reason="admin")
    return response


@require_POST
@login_required
def logout_view(request: HttpRequest) -> HttpResponse:
    session_logout(request=request)
    return redirect("login")


@require_GET
@login_not_required
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links: send them to the static icon."""
    return HttpResponsePermanentRedirect(static("img/favicon.ico"))


@never_cache
@require_GET
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
@login_not_required
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 503 naming whichever of the database and the broker cannot be reached.

    The sweeper's last run and the audit chain's last check are reported beside them and
    flagged when stale or broken, without failing the check: this process can serve requests;
    what stopped is beat, elsewhere, and a broken chain needs a person, not a restart.
    """
    checks = {"database": health.check_database(), "broker": health.check_broker()}
    failing = [name for name, result in checks.items() if result != "ok"]
    sweeper, chain = health.check_sweeper(), health.check_audit_chain()
    details = {"checks": checks, "sweeper": sweeper, "audit_chain": chain, "warnings": []}
    watched = (("sweeper", sweeper), ("audit_chain", chain))
    details["warnings"] = [name for name, text in watched if not text.startswith("ok")]
    if failing:
        return JsonResponse({"status": "unavailable", "failing": failing, **details}, status=503)
    return JsonResponse({"status": "ok", **details})
