"""How the printable case file writes the document's times and JSON values."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import template

register = template.Library()


@register.filter
def at(value: str | None) -> str:
    """An ISO 8601 time from the document as "2026-03-01 14:30:05 UTC"."""
    if not value:
        return ""
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S UTC")


@register.filter
def day(value: str | None) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d") if value else ""


@register.filter
def clock(value: str | None) -> str:
    return datetime.fromisoformat(value).strftime("%H:%M:%S") if value else ""


@register.filter
def compact(value: Any) -> str:
    """A JSON value on one line."""
    return json.dumps(value, ensure_ascii=False)
