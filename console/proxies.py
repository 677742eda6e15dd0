"""The address a request came from, behind the proxies the deployment says it has.

Each trusted proxy appends the address it received the request from to X-Forwarded-For, so
behind N proxies the client is the Nth entry from the right; whatever stands further left was
written by the client and proves nothing. With no trusted proxy the header is never read.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The client's address for sign-in throttling (django-axes' AXES_CLIENT_IP_CALLABLE)."""
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < proxies or not forwarded[-proxies]:
        return remote  # fewer hops than configured: the request did not come through them
    candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
