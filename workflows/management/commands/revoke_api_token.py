from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actors import Actor
from workflows.models import ApiToken
from workflows.services.tokens import TokenError, api_token_revoke


class Command(BaseCommand):
    help = "Revoke an API token by name: every request carrying it is refused from now on."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        token = ApiToken.objects.filter(name=options["name"]).first()
        if token is None:
            raise CommandError(f"There is no token named {options['name']!r}.")
        actor = Actor(kind="system", label=f"cli:{getpass.getuser()}")
        try:
            api_token_revoke(token=token, actor=actor)
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Revoked token {token.name!r} ({token.prefix}…).")
