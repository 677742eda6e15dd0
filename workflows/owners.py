"""How a definition names an owner: a team's slug, or user:<username> for one person."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from workflows.models import Team

USER_PREFIX = "user:"


def owner_username(ref: str) -> str | None:
    """The username a user:<username> reference names; None when the reference is a team slug."""
    return ref.removeprefix(USER_PREFIX) if ref.startswith(USER_PREFIX) else None


def owner_ref(owner: Any) -> str:
    """The reference that names an owner: user:<username> for a person, a Team's slug, or ""."""
    if owner is None:
        return ""
    if isinstance(owner, Team):
        return owner.slug
    return USER_PREFIX + owner.get_username()


def owner_find(ref: str) -> Any:
    """The Team or person a reference names, or None if there is none by that name."""
    username = owner_username(ref)
    if username is not None:
        return get_user_model().objects.filter(username=username).first()
    return Team.objects.filter(slug=ref).first()
