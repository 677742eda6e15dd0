from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import loader


def server_error(request: HttpRequest) -> HttpResponse:
    """A plain page with the request id, so a report can be matched to the logs; no traceback."""
    template = loader.get_template("500.html")
    request_id = getattr(request, "request_id", "")
    return HttpResponse(template.render({"request_id": request_id}), status=500)
