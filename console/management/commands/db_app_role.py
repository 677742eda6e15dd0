from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction

from console.db_roles import app_role_grants


class Command(BaseCommand):
    help = (
        "Print (or, with --apply, run as the tables' owner) the grants that give the "
        "application's database role exactly what it needs: see README, Production."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the role the application connects as")
        parser.add_argument("--apply", action="store_true", help="run the statements now")

    def handle(self, *args: Any, **options: Any) -> None:
        statements = app_role_grants(options["role"], connection=connection)
        if not options["apply"]:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"{len(statements)} grant statements applied to {options['role']}")
