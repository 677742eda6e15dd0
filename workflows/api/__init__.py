"""HTTP API v1, the engine's part: ingest and outcome callbacks (DESIGN.md section 7).

One router; each endpoint module adds its operations to it when imported.
"""

from __future__ import annotations

from workflows.api import ingest, outcomes
from workflows.api.common import (
    ApiError,
    ErrorOut,
    JsonObjectParser,
    event_for,
    parse_json,
    parse_json_object,
    router,
    token_of,
    workflow_for,
)

__all__ = [
    "ApiError",
    "ErrorOut",
    "JsonObjectParser",
    "event_for",
    "ingest",
    "outcomes",
    "parse_json",
    "parse_json_object",
    "router",
    "token_of",
    "workflow_for",
]
