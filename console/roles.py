"""The four roles of DESIGN.md section 2, as Django groups, and how a user's roles read."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser, AnonymousUser

OPERATOR = "operator"
MANAGER = "manager"
ADMIN = "admin"
AUDITOR = "auditor"
ROLES = (OPERATOR, MANAGER, ADMIN, AUDITOR)


def role_names(user: AbstractUser | AnonymousUser) -> list[str]:
    """The user's roles in the fixed order of ROLES (groups that are not roles are left out)."""
    if not user.is_authenticated:
        return []
    names = {group.name for group in user.groups.all()}
    return [role for role in ROLES if role in names]
