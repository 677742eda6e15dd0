"""People, roles and sign-in locks in Django's admin, with every change on the audit trail."""

from __future__ import annotations

from typing import Any

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from audit.admin_trail import AuditedModelAdmin
from console.services import password_change_recorded
from exceptions.handover import person_handover

User = get_user_model()


def user_snapshot(user: Any) -> dict[str, Any]:
    listed = bool(user.pk)
    return {
        "username": user.get_username(),
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)) if listed else [],
        "user_permissions": sorted(
            f"{app}.{codename}"
            for app, codename in user.user_permissions.values_list(
                "content_type__app_label", "codename"
            )
        )
        if listed
        else [],
    }


class AuditedUserAdmin(AuditedModelAdmin, UserAdmin):
    audit_noun = "user"

    def audit_snapshot(self, obj: Any) -> dict[str, Any]:
        return user_snapshot(obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        before = getattr(request, "_audit_before", None)
        if before is not None and before["is_active"] and not obj.is_active:
            # A person deactivated here leaves: their open cases are handed over, each audited.
            # The admin's change view runs in one transaction: the hand-over joins it.
            person_handover(person=obj, actor=request.user, reason="deactivated in the admin")

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        """Setting someone's password: on the trail (never the password, not even hashed)."""
        with transaction.atomic():
            before = User.objects.filter(pk=id).values_list("password", flat=True).first()
            response = super().user_change_password(request, id, form_url)
            user = User.objects.filter(pk=id).first()
            if user is not None and user.password != before:
                password_change_recorded(actor=request.user, target=user, reason="admin")
        return response


class AuditedGroupAdmin(AuditedModelAdmin, GroupAdmin):
    audit_noun = "group"


class AuditedAccessAttemptAdmin(AuditedModelAdmin, axes_admin.AccessAttemptAdmin):
    """Deleting a failed-attempt record lifts that lock-out."""

    audit_noun = "signin_lock"


class AuditedAccessLogAdmin(AuditedModelAdmin, axes_admin.AccessLogAdmin):
    audit_noun = "signin_log"


class AuditedAccessFailureLogAdmin(AuditedModelAdmin, axes_admin.AccessFailureLogAdmin):
    audit_noun = "signin_failure_log"


for model, model_admin in [
    (User, AuditedUserAdmin),
    (Group, AuditedGroupAdmin),
    (AccessAttempt, AuditedAccessAttemptAdmin),
    (AccessLog, AuditedAccessLogAdmin),
    (AccessFailureLog, AuditedAccessFailureLogAdmin),
]:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)

admin.site.site_header = "Handoff administration"
admin.site.site_title = "Handoff"
