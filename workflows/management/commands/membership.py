"""manage.py membership start|end|role|list: people on teams over time, for scripts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.management.commands.team import cli_actor, team_named
from workflows.models import Membership
from workflows.services.teams import (
    OwnersRefused,
    membership_change_role,
    membership_end,
    membership_start,
)

ROLES = [role for role, _ in Membership.ROLE_CHOICES]


def person_named(username: str) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"There is nobody called {username!r}.")
    return user


def open_membership(username: str, slug: str) -> Membership:
    found = Membership.objects.filter(
        user=person_named(username), team=team_named(slug), valid_to__isnull=True
    ).first()
    if found is None:
        raise CommandError(f"{username} is not on team {slug} now.")
    return found


class Command(BaseCommand):
    help = (
        "Start, end, change the role of and list memberships. Nothing is overwritten: a change "
        "of role ends the membership and starts a new one. Every change is audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        start = actions.add_parser("start", help="put a person on a team")
        start.add_argument("username")
        start.add_argument("team")
        start.add_argument("--role", choices=ROLES, default=Membership.MEMBER)
        start.add_argument("--reason", default="")
        end = actions.add_parser("end", help="take a person off a team")
        end.add_argument("username")
        end.add_argument("team")
        end.add_argument("--reason", default="")
        role = actions.add_parser("role", help="change a person's role on a team")
        role.add_argument("username")
        role.add_argument("team")
        role.add_argument("role", choices=ROLES)
        role.add_argument("--reason", default="")
        listing = actions.add_parser("list", help="memberships, ended ones included")
        listing.add_argument("--team", default="")
        listing.add_argument("--user", default="")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        actor, reason = cli_actor(), options.get("reason", "")
        try:
            if action == "start":
                membership = membership_start(
                    user=person_named(options["username"]),
                    team=team_named(options["team"]),
                    role=options["role"],
                    actor=actor,
                    reason=reason,
                )
                self.stdout.write(f"{membership}: since {membership.valid_from:%Y-%m-%d %H:%M}")
            elif action == "end":
                membership = membership_end(
                    membership=open_membership(options["username"], options["team"]),
                    actor=actor,
                    reason=reason,
                )
                self.stdout.write(f"{membership}: ended {membership.valid_to:%Y-%m-%d %H:%M}")
            elif action == "role":
                membership = membership_change_role(
                    membership=open_membership(options["username"], options["team"]),
                    role=options["role"],
                    actor=actor,
                    reason=reason,
                )
                self.stdout.write(f"{membership}: since {membership.valid_from:%Y-%m-%d %H:%M}")
            else:
                self._list(team=options["team"], user=options["user"])
        except OwnersRefused as exc:
            raise CommandError(str(exc)) from exc

    def _list(self, *, team: str, user: str) -> None:
        rows = Membership.objects.select_related("user", "team").order_by(
            "team__slug", "valid_from"
        )
        if team:
            rows = rows.filter(team=team_named(team))
        if user:
            rows = rows.filter(user=person_named(user))
        for m in rows:
            until = f"{m.valid_to:%Y-%m-%d %H:%M}" if m.valid_to else "now"
            self.stdout.write(
                f"{m.team.slug}\t{m.user.get_username()}\t{m.role}\t"
                f"{m.valid_from:%Y-%m-%d %H:%M} – {until}"
            )
