"""Every write to exception cases: opening them, the operators' actions, saved views, bulk jobs.

A package by concern (cases, closing, saved_views, bulk); the names below are its public face.
"""

from __future__ import annotations

from exceptions.services import bulk
from exceptions.services.bulk import (
    BULK_CHUNK_SIZE,
    BULK_INLINE_MAX,
    bulk_job_create,
    bulk_job_run_chunk,
    bulk_job_run_inline,
)
from exceptions.services.cases import (
    CaseActionForbidden,
    CaseActionRefused,
    CaseConflict,
    case_acknowledge,
    case_assign,
    case_claim,
    case_comment,
    case_fingerprint,
    case_open_or_join,
    case_snooze,
)
from exceptions.services.closing import (
    REVIEW_REASON,
    case_dismiss,
    case_replay,
    case_resolve,
    case_retry,
    cases_replay,
    cases_wake_snoozed,
)
from exceptions.services.manual import case_record_outcome
from exceptions.services.saved_views import saved_view_delete, saved_view_save

__all__ = [
    "BULK_CHUNK_SIZE",
    "BULK_INLINE_MAX",
    "REVIEW_REASON",
    "CaseActionForbidden",
    "CaseActionRefused",
    "CaseConflict",
    "bulk",
    "bulk_job_create",
    "bulk_job_run_chunk",
    "bulk_job_run_inline",
    "case_acknowledge",
    "case_assign",
    "case_claim",
    "case_comment",
    "case_dismiss",
    "case_fingerprint",
    "case_open_or_join",
    "case_record_outcome",
    "case_replay",
    "case_resolve",
    "case_retry",
    "cases_replay",
    "case_snooze",
    "cases_wake_snoozed",
    "saved_view_delete",
    "saved_view_save",
]
