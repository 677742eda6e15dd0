from __future__ import annotations

from django.http import HttpRequest

from console.roles import role_names


def shell(request: HttpRequest) -> dict[str, object]:
    """What the base layout needs on every page: the signed-in user's roles."""
    # Error pages for requests refused before authentication (a bad Host) have no user yet.
    user = getattr(request, "user", None)
    return {"user_roles": role_names(user) if user is not None else []}
