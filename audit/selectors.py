"""Reads of the audit trail."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Q, QuerySet
from django.http import QueryDict

from audit.exports import ExportPlan, export_plan
from audit.filters import AuditFilter
from audit.models import AuditEntry, ChainCheck
from audit.pagination import KeysetPage, SortSpec, keyset_page

# Newest first; created_at then id is unique and walks audit_created_idx from any cursor.
TRAIL_ORDER = SortSpec(("created_at", "id"), ("dt", "int"), descending=True)
SEE_EVERYTHING = "audit.view_all_auditentry"


def recent_entries(*, limit: int = 10) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.order_by("-created_at", "-id")[:limit]


def chain_status() -> dict[str, object]:
    last = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").only("seq", "sealed_at")
    head = last.first()
    return {
        "sealed": head.seq if head else 0,
        "last_sealed_at": head.sealed_at if head else None,
        "unsealed": AuditEntry.objects.filter(seq__isnull=True).count(),
        "last_check": ChainCheck.objects.order_by("-checked_at", "-id").first(),
    }


def entries_visible(*, user: Any) -> QuerySet[AuditEntry]:
    """Every entry for auditors and admins; for anyone else, the entries about objects of a kind
    they may view, and their own actions."""
    if user.has_perm(SEE_EVERYTHING):
        return AuditEntry.objects.all()
    kinds = [
        model._meta.label_lower
        for model in apps.get_models()
        if user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}")
    ]
    return AuditEntry.objects.filter(Q(object_type__in=kinds) | Q(actor_id=user.pk))


def trail_filter(params: QueryDict, *, user: Any) -> AuditFilter:
    """The trail's filters over what this person may see: the page, its exports, the command."""
    return AuditFilter(params, queryset=entries_visible(user=user))


def trail_page(
    queryset: QuerySet[AuditEntry], *, after: str = "", before: str = "", per: int = 50
) -> KeysetPage:
    """One page of entries, newest first; InvalidCursor for a cursor that is not ours."""
    return keyset_page(queryset, spec=TRAIL_ORDER, per=per, after=after, before=before)


def export_plan_for(params: QueryDict, *, user: Any) -> ExportPlan:
    """An export of the trail's filters over what this person may see; ExportRefused if the
    query cannot be honoured."""
    sees_everything = user.has_perm(SEE_EVERYTHING)
    return export_plan(
        params,
        visible=entries_visible(user=user),
        scope="all" if sees_everything else f"visible to {user.get_username()}",
    )
