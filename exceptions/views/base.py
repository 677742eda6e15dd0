"""What every page of the queue app shares: the request as htmx leaves it, the permissions."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from exceptions.actions import TRIAGE

VIEW_CASES = "exceptions.view_exceptioncase"

__all__ = ["TRIAGE", "VIEW_CASES", "HtmxHttpRequest"]


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (the typing its documentation gives)."""

    htmx: HtmxDetails
