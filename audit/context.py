"""The request id and the approval of the work in progress, so an audit entry can name the
request that caused it and the approval it carries out."""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")
current_approval_id: ContextVar[int | None] = ContextVar("current_approval_id", default=None)
