"""manage.py team create|rename|deactivate|list: the console's team changes, for scripts."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.actors import Actor
from workflows.models import Team
from workflows.ownership import members_at
from workflows.services.teams import OwnersRefused, team_create, team_deactivate, team_rename


def cli_actor() -> Actor:
    """Whoever runs a management command, as the audit trail names them."""
    return Actor(kind="system", label=f"cli:{getpass.getuser()}")


def team_named(slug: str) -> Team:
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise CommandError(f"There is no team {slug!r}.")
    return team


class Command(BaseCommand):
    help = "Create, rename, deactivate and list teams; every change is audited."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="a new team")
        create.add_argument("slug")
        create.add_argument("name")
        create.add_argument("--reason", default="")
        rename = actions.add_parser("rename", help="a new name (the slug stays)")
        rename.add_argument("slug")
        rename.add_argument("name")
        rename.add_argument("--reason", default="")
        deactivate = actions.add_parser("deactivate", help="the team stops taking work")
        deactivate.add_argument("slug")
        deactivate.add_argument("--reason", required=True)
        actions.add_parser("list", help="every team with its members now")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            if action == "create":
                team = team_create(
                    slug=options["slug"],
                    name=options["name"],
                    actor=cli_actor(),
                    reason=options["reason"],
                )
                self.stdout.write(f"created team {team.slug} ({team.name})")
            elif action == "rename":
                team = team_rename(
                    team=team_named(options["slug"]),
                    name=options["name"],
                    actor=cli_actor(),
                    reason=options["reason"],
                )
                self.stdout.write(f"team {team.slug} is now called {team.name}")
            elif action == "deactivate":
                team = team_deactivate(
                    team=team_named(options["slug"]), actor=cli_actor(), reason=options["reason"]
                )
                self.stdout.write(f"team {team.slug} deactivated")
            else:
                self._list()
        except OwnersRefused as exc:
            raise CommandError(str(exc)) from exc

    def _list(self) -> None:
        now = timezone.now()
        for team in Team.objects.order_by("slug"):
            people = ", ".join(
                f"{m.user.get_username()}{' (lead)' if m.role == 'lead' else ''}"
                for m in members_at(team_id=team.pk, at=now)
            )
            state = "" if team.active else " [inactive]"
            self.stdout.write(f"{team.slug}{state}: {team.name} — {people or 'no members'}")
