"""Reason codes are configuration (admins add their own, audited); cases and jobs are read-only
here: every change to a case goes through the queue's services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import HttpRequest

from audit.services import audit_record
from exceptions.approvals.models import ApprovalRequest
from exceptions.models import BulkJob, ExceptionCase, ReasonCode, SavedView

REASON_FIELDS = (
    "code",
    "label",
    "description",
    "default_acknowledge_within",
    "default_resolve_within",
    "note_required",
    "active",
)


@admin.register(ReasonCode)
class ReasonCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "label", "default_acknowledge_within", "default_resolve_within",
                    "note_required", "builtin", "active"]  # fmt: skip
    search_fields = ["code", "label"]
    fields = REASON_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A code is referenced by its cases: once it exists it keeps its name.
        return ["code"] if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ReasonCode, form: Any, change: bool) -> None:
        with transaction.atomic():
            before = (
                model_to_dict(ReasonCode.objects.get(pk=obj.pk), fields=REASON_FIELDS)
                if change
                else None
            )
            super().save_model(request, obj, form, change)
            audit_record(
                actor=request.user,
                action="reason_code.change" if change else "reason_code.create",
                target=obj,
                before=before,
                after=model_to_dict(obj, fields=REASON_FIELDS),
            )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ExceptionCase)
class ExceptionCaseAdmin(ReadOnlyAdmin):
    list_display = ["id", "reason", "workflow", "state", "owner_team", "owner_user", "opened_at"]
    list_filter = ["state", "reason", "workflow"]
    list_select_related = ["reason", "workflow", "owner_team", "owner_user"]
    search_fields = ["=id", "=event__id", "detail"]
    exclude = ["search"]
    show_full_result_count = False


@admin.register(BulkJob)
class BulkJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "action", "created_by", "state", "done", "total", "created_at"]
    list_select_related = ["created_by"]


@admin.register(SavedView)
class SavedViewAdmin(ReadOnlyAdmin):
    list_display = ["name", "owner", "query", "created_at"]
    list_select_related = ["owner"]


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """Read-only: requests are decided on /approvals/, where four-eyes is enforced."""

    list_display = ["id", "kind", "state", "requested_by", "required_role", "decided_by"]
    list_filter = ["state", "kind"]
    list_select_related = ["requested_by", "decided_by"]
