"""Short, dense wording of times, SLA clocks and actions for the queue and the case page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template

from exceptions.actions import ACTIONS
from exceptions.presenters import short_duration as _short
from exceptions.presenters import sla_wording

register = template.Library()


@register.filter
def ago(value: datetime | None, now: datetime) -> str:
    """How long ago (or from now): "3h 12m"."""
    if value is None:
        return ""
    return _short(now - value)


@register.filter
def sla_state(case: Any, now: datetime) -> str:
    return case.sla_state(now)


@register.filter
def sla_text(case: Any, now: datetime) -> str:
    """ "breached 2h 5m ago", "ack in 12m", or "" when no clock runs."""
    return sla_wording(case, now)[1]


@register.filter
def action_label(name: str) -> str:
    """The label of a case action by its name (a bulk job stores the name)."""
    action = ACTIONS.get(name)
    return action.label if action is not None else name


@register.filter
def depth_class(depth: int) -> str:
    """An indentation class (CSP allows no inline styles); deep nesting stops indenting at 12."""
    return f"d{min(int(depth), 12)}"


@register.filter
def ms(value: int | None) -> str:
    if value is None:
        return ""
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value} ms"
