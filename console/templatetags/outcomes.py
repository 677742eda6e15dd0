"""Units of the outcome figures, for the templates that place them."""

from __future__ import annotations

from django import template

from console.outcomes.presenters import duration, percent

register = template.Library()


@register.filter
def pct(value: float | None) -> str:
    return percent(value)


@register.filter
def seconds(value: float | None) -> str:
    return duration(value)
