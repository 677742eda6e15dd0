"""The exception queue, the case page and the event page (DESIGN.md section 8)."""

from __future__ import annotations

from exceptions.views.case import (
    case_action,
    case_comment,
    case_detail,
    case_preview,
    event_detail,
)
from exceptions.views.queue import (
    bulk,
    bulk_progress,
    group_members,
    queue,
    saved_view_delete,
    saved_view_save,
)

__all__ = [
    "bulk",
    "bulk_progress",
    "case_action",
    "case_comment",
    "case_detail",
    "case_preview",
    "event_detail",
    "group_members",
    "queue",
    "saved_view_delete",
    "saved_view_save",
]
