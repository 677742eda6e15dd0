"""Reads of approval requests: the /approvals/ list, one request, and how each reads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import django_filters
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import QueryDict

from audit.presenters import Change, changes
from exceptions.approvals.models import ApprovalKind, ApprovalRequest, ApprovalState
from workflows.models import Workflow

LIST_LIMIT = 100


class ApprovalFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=ApprovalState.choices, empty_label="Any state")
    kind = django_filters.ChoiceFilter(choices=ApprovalKind.choices, empty_label="Any kind")
    workflow = django_filters.ModelChoiceFilter(
        queryset=Workflow.objects.order_by("slug"),
        to_field_name="slug",
        empty_label="Any workflow",
    )

    class Meta:
        model = ApprovalRequest
        fields = ["state", "kind", "workflow"]


def _shaped(queryset: QuerySet[ApprovalRequest]) -> QuerySet[ApprovalRequest]:
    return queryset.select_related(
        "requested_by", "decided_by", "event", "case", "workflow", "workflow_version"
    )


def approvals_list(params: QueryDict) -> tuple[ApprovalFilter, list[ApprovalRequest]]:
    """The filter and its requests, pending first, then newest first (at most LIST_LIMIT)."""
    filterset = ApprovalFilter(params, queryset=ApprovalRequest.objects.all())
    if not filterset.is_valid():
        return filterset, []
    pending_first = Case(
        When(state=ApprovalState.PENDING, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    rows = _shaped(filterset.qs).order_by(pending_first, "-requested_at", "-id")[:LIST_LIMIT]
    return filterset, list(rows)


def approval_for_page(pk: int) -> ApprovalRequest:
    return _shaped(ApprovalRequest.objects.all()).get(pk=pk)


@dataclass(frozen=True)
class WhatItDoes:
    """What running a request would do, as the approver reads it."""

    summary: str
    payload_changes: list[Change] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def what_it_does(approval: ApprovalRequest) -> WhatItDoes:
    params = approval.params
    if approval.kind == ApprovalKind.EDITED_REPLAY:
        original = approval.event.payload if approval.event is not None else None
        return WhatItDoes(
            summary=f"Replay event {approval.event_id} under the current version with the "
            "payload edited as below; the case closes as replayed.",
            payload_changes=changes(original, params["params"]["payload"]),
        )
    if approval.kind == ApprovalKind.DELIVERED_REPLAY:
        return WhatItDoes(
            summary=f"Replay event {approval.event_id}, which its destination already accepted, "
            f"under the {params.get('run_version', 'original')} version: it is sent again."
        )
    if approval.kind in (ApprovalKind.BULK_REPLAY, ApprovalKind.BULK_DISMISS):
        arguments = ", ".join(f"{k}: {v}" for k, v in params["params"].items())
        return WhatItDoes(
            summary=f"{params['action'].capitalize()} {len(params['cases'])} cases"
            + (f" ({arguments})" if arguments else "")
            + f" as a bulk job; selected as {params.get('scope') or 'listed'}."
        )
    slug = approval.workflow.slug if approval.workflow is not None else ""
    return WhatItDoes(
        summary=f"Change who owns workflow {slug}: the owner team and its fallback chain.",
        before=params.get("before"),
        after=params["after"],
    )


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
