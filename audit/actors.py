"""Who did something, frozen as it was at that moment: roles and team memberships included.

The audit app depends on nothing of ours, so team memberships come from a provider that the
app owning teams registers at start-up.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MembershipsProvider = Callable[[Any, datetime], list[dict[str, Any]]]
_memberships_provider: MembershipsProvider | None = None


def register_memberships_provider(provider: MembershipsProvider) -> None:
    """provider(user, at) -> [{"team": slug, "role": name, ...}] active for user at that time."""
    global _memberships_provider
    _memberships_provider = provider


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "token" or "system"
    label: str
    user_id: int | None = None
    roles: list[str] = field(default_factory=list)
    memberships: list[dict[str, Any]] = field(default_factory=list)


SYSTEM = Actor(kind="system", label="system")


def actor_label(actor: Any) -> str:
    """How records name whoever acted: an Actor's label, a person's username, or "system"."""
    if actor is None:
        return SYSTEM.label
    if isinstance(actor, Actor):
        return actor.label
    return str(actor.get_username())


def actor_for_user(user: Any, at: datetime) -> Actor:
    roles = sorted(group.name for group in user.groups.all())
    if user.is_superuser:
        roles = [*roles, "superuser"]
    memberships = _memberships_provider(user, at) if _memberships_provider else []
    return Actor(
        kind="user",
        label=user.get_username(),
        user_id=user.pk,
        roles=roles,
        memberships=memberships,
    )


def actor_for_token(name: str) -> Actor:
    return Actor(kind="token", label=name)


def command_actor(command: str) -> Actor:
    """Who acts when a person runs manage.py: the command and the operating-system account."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers) and no LOGNAME/USER
        account = "unknown account"
    return Actor(kind="command", label=f"manage.py {command} ({account})")
