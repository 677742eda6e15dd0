"""People and roles in Django's admin, with every change on the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.http import HttpRequest

from audit.services import audit_record
from exceptions.handover import person_handover

User = get_user_model()


def _snapshot(user: Any) -> dict[str, Any]:
    return {
        "username": user.get_username(),
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)) if user.pk else [],
    }


class AuditedUserAdmin(UserAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # save_related, which writes the entry, gets no state of ours but the request: the
        # snapshot from before the save rides on it (HttpRequest declares no such attribute).
        request._audit_before = (  # type: ignore[attr-defined]
            _snapshot(User.objects.get(pk=obj.pk)) if change else None
        )
        super().save_model(request, obj, form, change)
        before = getattr(request, "_audit_before", None)
        if before is not None and before["is_active"] and not obj.is_active:
            # The admin's change view runs in one transaction: the hand-over joins it.
            person_handover(person=obj, actor=request.user, reason="deactivated in the admin")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Groups are saved here, after the user row: record the entry once both are in place.
        super().save_related(request, form, formsets, change)
        with transaction.atomic():
            audit_record(
                actor=request.user,
                action="user.change" if change else "user.create",
                target=form.instance,
                before=getattr(request, "_audit_before", None),
                after=_snapshot(form.instance),
                reason="admin",
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            audit_record(
                actor=request.user, action="user.delete", target=obj, before=_snapshot(obj)
            )
            super().delete_model(request, obj)


admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
admin.site.site_header = "Handoff administration"
admin.site.site_title = "Handoff"
