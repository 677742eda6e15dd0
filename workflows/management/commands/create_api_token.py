from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actors import Actor
from workflows.services.tokens import TokenError, api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token scoped to workflows (or all of them). The token is printed once, "
        "alone on stdout; only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="a unique name, e.g. the integration")
        parser.add_argument(
            "--workflow",
            action="append",
            default=[],
            dest="workflows",
            metavar="SLUG",
            help="a workflow the token may use; repeat for more",
        )
        parser.add_argument(
            "--all-workflows", action="store_true", help="scope the token to every workflow"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor(kind="system", label=f"cli:{getpass.getuser()}")
        try:
            token, plaintext = api_token_create(
                name=options["name"],
                workflow_slugs=options["workflows"],
                all_workflows=options["all_workflows"],
                actor=actor,
            )
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
        scope = "all workflows" if token.all_workflows else ", ".join(sorted(options["workflows"]))
        # The token alone on stdout, so scripts can capture it; the notice goes to stderr.
        self.stdout.write(plaintext)
        self.stderr.write(
            f"Created token {token.name!r} ({token.prefix}…) for {scope}. "
            "Store it now: it is not shown again."
        )
