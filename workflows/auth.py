"""Bearer-token authentication for the HTTP API (DESIGN.md section 7)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from workflows.api_cache import last_used, note_used, token_grant
from workflows.models import ApiToken, Workflow
from workflows.ratelimit import rate_limit_check
from workflows.services.tokens import token_hash

# Anything that cannot be one of our tokens is refused without a database query.
_TOKEN_SHAPE = re.compile(r"^hnd_[A-Za-z0-9_-]{20,128}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenAuth(HttpBearer):
    """Finds the ApiToken by the hash of the bearer token; returns it as request.auth."""

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get(self.header, "")
        scheme, _, credentials = header.partition(" ")
        if not header:
            raise AuthenticationError(
                message="Missing bearer token: send Authorization: Bearer <token>."
            )
        if scheme.lower() != self.openapi_scheme or not credentials.strip():
            raise AuthenticationError(message="Authorization must be: Bearer <token>")
        return self.authenticate(request, credentials.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        if not _TOKEN_SHAPE.match(token):
            raise AuthenticationError(message="Invalid token")
        # Kept in process for a few seconds (workflows/api_cache.py): no query per request.
        grant = token_grant(token_hash(token))
        if grant is None:
            raise AuthenticationError(message="Invalid token")
        if grant.revoked_at is not None:
            raise AuthenticationError(message="Token revoked")
        found = grant.as_token(last_used(grant.pk))
        _touch(found)
        # Limits are per token, so they are checked here, once the token is known. (Ninja's
        # throttle classes keep per-request state on a shared instance; this keeps none.)
        rate_limit_check(found.token_hash[:16])
        return found


def _touch(token: ApiToken) -> None:
    """Record use at most once a minute: one conditional UPDATE, skipped when recent."""
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if token.last_used_at is not None and token.last_used_at > stale:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
    token.last_used_at = now
    note_used(token.pk, now)


def workflows_visible_to(token: ApiToken) -> Any:
    """The workflows a token may see, as a queryset (for filtering other queries)."""
    if token.all_workflows:
        return Workflow.objects.all()
    return token.workflows.all()
