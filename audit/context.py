"""The request id of the work in progress, so an audit entry can name the request that caused it."""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")
