"""Django's admin, with every change it makes on the trail in the same transaction.

A ModelAdmin that mixes this in records creates and changes (once its many-to-many fields are
saved too: groups, permissions), deletes one by one, and "delete selected".
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import models, transaction
from django.http import HttpRequest

from audit.services import audit_record

# Never on the trail, not even hashed: a password hash is a secret to crack.
SECRET_FIELDS = {"password"}


def _related_label(obj: Any) -> str:
    if isinstance(obj, Permission):
        return f"{obj.content_type.app_label}.{obj.codename}"
    return str(obj)


def admin_snapshot(obj: models.Model) -> dict[str, Any]:
    """The row's fields (foreign keys as ids) and its many-to-many fields as sorted labels."""
    fields: dict[str, Any] = {
        field.name: field.value_from_object(obj)
        for field in obj._meta.concrete_fields
        if field.name not in SECRET_FIELDS
    }
    for field in obj._meta.many_to_many:
        related = getattr(obj, field.name).all() if obj.pk else []
        fields[field.name] = sorted(_related_label(item) for item in related)
    return fields


class AuditedModelAdmin(admin.ModelAdmin):
    """Creates, changes and deletes made in the admin, each with its entry."""

    # The noun of the entries' actions ("group" -> group.change); the model's name by default.
    audit_noun = ""

    def audit_action(self, verb: str) -> str:
        return f"{self.audit_noun or self.model._meta.model_name}.{verb}"

    def audit_snapshot(self, obj: Any) -> dict[str, Any]:
        return admin_snapshot(obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # save_related, which writes the entry, gets no state of ours but the request: the
        # snapshot from before the save rides on it (HttpRequest declares no such attribute).
        request._audit_before = (  # type: ignore[attr-defined]
            self.audit_snapshot(type(obj)._default_manager.get(pk=obj.pk)) if change else None
        )
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Many-to-many fields are saved here, after the row: the entry waits for both.
        super().save_related(request, form, formsets, change)
        with transaction.atomic():
            audit_record(
                actor=request.user,
                action=self.audit_action("change" if change else "create"),
                target=form.instance,
                before=getattr(request, "_audit_before", None),
                after=self.audit_snapshot(form.instance),
                reason="admin",
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            audit_record(
                actor=request.user,
                action=self.audit_action("delete"),
                target=obj,
                before=self.audit_snapshot(obj),
                reason="admin",
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        """The "delete selected" action: one entry per row, all or nothing."""
        with transaction.atomic():
            for obj in queryset:
                audit_record(
                    actor=request.user,
                    action=self.audit_action("delete"),
                    target=obj,
                    before=self.audit_snapshot(obj),
                    reason="admin: delete selected",
                )
            super().delete_queryset(request, queryset)
