"""The HTTP API v1 (DESIGN.md section 7): one NinjaAPI, its routers and its error shape.

Every response that is not a success is {"error": {"code", "message", "details"?}}, whatever
produced it: a handler's ApiError, schema validation, authentication, the rate limit, an
unreachable database, a wrong method or an unknown path. No request yields a bare 500 page.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from console.catalogue.api import router as readiness_router
from exceptions.api import router as exceptions_router
from workflows.api import ApiError, JsonObjectParser
from workflows.api import router as workflows_router
from workflows.auth import TokenAuth
from workflows.owner_api import router as owners_router
from workflows.ratelimit import RateLimited

logger = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(error: ApiError) -> HttpResponse:
    response = JsonResponse(error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


class HandoffAPI(NinjaAPI):
    def _get_urls(self) -> list[URLResolver | URLPattern]:
        """Ninja's URLs, made API views: no login redirect, no CSRF, errors in our shape."""
        patterns = super()._get_urls()
        for pattern in patterns:
            if not isinstance(pattern, URLPattern):
                continue  # ninja makes none: its routers' URLs are paths, not includes
            if pattern.name == "api-root":
                pattern.callback = _unknown_path
            elif pattern.name == "openapi-json":
                pattern.callback = _get_only(pattern.callback)
            pattern.callback = _api_view(pattern.callback)
        # Anything else under /api/v1/ is a JSON 404 too, not the console's HTML page.
        patterns.append(re_path(r"^", _api_view(_unknown_path), name="unknown"))
        return patterns


def _api_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def api_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not (declared.isascii() and declared.isdigit()):
            # Django would fail on it when reading the body; say what is wrong instead.
            return error_response(
                ApiError(400, "invalid_request", "Content-Length must be a whole number.")
            )
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and response.get("Content-Type", "").startswith("text/"):
            allowed = response.get("Allow", "")
            response = error_response(
                ApiError(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not allowed here; use {allowed}.",
                    details={"allowed": [m.strip() for m in allowed.split(",") if m.strip()]},
                    headers={"Allow": allowed},
                )
            )
        return response

    # Bearer tokens, not the console's session: never a login redirect, no CSRF cookie.
    return csrf_exempt(login_not_required(api_view))


def _get_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def get_only(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return error_response(
                ApiError(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not allowed here; use GET.",
                    details={"allowed": ["GET"]},
                    headers={"Allow": "GET, HEAD"},
                )
            )
        return view(request, *args, **kwargs)

    return get_only


def _unknown_path(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return error_response(ApiError(404, "not_found", f"There is nothing at {request.path}."))


api = HandoffAPI(
    title="Handoff API",
    version="1",
    description=(
        "Send business events in, read their records, report outcomes. Authenticate with "
        'Authorization: Bearer <token>. Errors are {"error": {"code", "message", '
        '"details"?}}.'
    ),
    openapi_url="/openapi.json",
    # The console's CSP allows no CDN scripts, which the docs page would need.
    docs_url=None,
    urls_namespace="api-v1",
    auth=TokenAuth(),
    parser=JsonObjectParser(),
)
api.add_router("", workflows_router)
api.add_router("", exceptions_router)
api.add_router("", owners_router)
api.add_router("", readiness_router)


def _too_large() -> ApiError:
    # Django's own request body limit (DATA_UPLOAD_MAX_MEMORY_SIZE) applies to batches.
    return ApiError(
        413, "payload_too_large", "The body is larger than this server accepts.", details=None
    )


@api.exception_handler(ApiError)
def _on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc)


@api.exception_handler(ValidationError)
def _on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response(
        ApiError(
            400,
            "invalid_request",
            "The request does not match the schema.",
            # Pydantic's error contexts may hold objects JSON cannot encode: keep their text.
            json.loads(json.dumps(exc.errors, default=str)),
        ),
    )


@api.exception_handler(AuthenticationError)
def _on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(
        ApiError(401, "unauthenticated", exc.message, headers={"WWW-Authenticate": "Bearer"}),
    )


@api.exception_handler(HttpError)
def _on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja wraps what the body parser raises; the cause says what actually went wrong.
    cause = exc.__cause__
    if isinstance(cause, ApiError):
        return error_response(cause)
    if isinstance(cause, RequestDataTooBig):
        return error_response(_too_large())
    code = _STATUS_CODES.get(exc.status_code, "error")
    return error_response(ApiError(exc.status_code, code, exc.message))


@api.exception_handler(RequestDataTooBig)
def _on_data_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(_too_large())


@api.exception_handler(RateLimited)
def _on_rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    return error_response(
        ApiError(
            429,
            "rate_limited",
            f"Too many requests for this token; retry after {exc.retry_after} seconds.",
            details={"retry_after": exc.retry_after},
            headers={"Retry-After": str(exc.retry_after)},
        ),
    )


@api.exception_handler(Http404)
def _on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(ApiError(404, "not_found", "Not found."))


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _on_database_unreachable(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Never a 2xx for what was not stored: the client should retry later.
    logger.warning("API request refused, database unreachable: %s", exc)
    return error_response(
        ApiError(
            503,
            "unavailable",
            "The database cannot be reached; nothing was stored. Retry later.",
            headers={"Retry-After": "5"},
        ),
    )


@api.exception_handler(Exception)
def _on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("API request failed", exc_info=exc)
    return error_response(
        ApiError(
            500,
            "internal_error",
            "Something went wrong on our side. "
            f"Quote request id {getattr(request, 'request_id', '')} when reporting it.",
        ),
    )
