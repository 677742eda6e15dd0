"""What the trail is narrowed by, on its page, in its exports and in audit_export alike."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditEntry


def _moment(value: date | datetime, *, end: bool) -> datetime:
    """A date means the whole day (in the console's time zone); a time means that instant."""
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    start = timezone.make_aware(datetime.combine(value, time.min))
    return start + timedelta(days=1) if end else start


class _DateOrTime(forms.Field):
    """A day (2026-03-01: the whole of it) or an instant (2026-03-01T14:30, ISO 8601)."""

    def to_python(self, value: Any) -> date | datetime | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError as exc:
            raise forms.ValidationError("Enter a date (YYYY-MM-DD) or a time.") from exc


class _MomentFilter(django_filters.Filter):
    field_class = _DateOrTime


class AuditFilter(django_filters.FilterSet):
    since = _MomentFilter(label="From", method="filter_since")
    until = _MomentFilter(label="Until", method="filter_until")
    actor = django_filters.CharFilter(label="Actor", field_name="actor_label", lookup_expr="iexact")
    action = django_filters.CharFilter(label="Action", method="filter_action")
    object_type = django_filters.CharFilter(label="Object type", field_name="object_type")
    object_id = django_filters.CharFilter(label="Object id", field_name="object_id")
    workflow = django_filters.CharFilter(label="Workflow", field_name="workflow")
    request_id = django_filters.CharFilter(label="Request id", field_name="request_id")
    approval = django_filters.NumberFilter(label="Approval", field_name="approval_id")

    class Meta:
        model = AuditEntry
        fields: list[str] = []

    def filter_since(self, queryset: QuerySet[AuditEntry], name: str, value: Any) -> Any:
        return queryset.filter(created_at__gte=_moment(value, end=False)) if value else queryset

    def filter_until(self, queryset: QuerySet[AuditEntry], name: str, value: Any) -> Any:
        return queryset.filter(created_at__lt=_moment(value, end=True)) if value else queryset

    def filter_action(self, queryset: QuerySet[AuditEntry], name: str, value: str) -> Any:
        """An action ("case.resolve"), or every action of a kind with a dot ("case.")."""
        if not value:
            return queryset
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)


FILTER_NAMES = tuple(AuditFilter.base_filters)
