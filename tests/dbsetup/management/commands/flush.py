"""Django's flush for the test database, which the append-only tables refuse to TRUNCATE.

A transactional test ends with a flush. The trail's TRUNCATE triggers have no way around them
(no setting they read, no role they spare); what the test harness does instead is what only a
superuser can: a session in replica mode, where PostgreSQL fires no ordinary trigger. The
application's production role can neither set that nor disable a trigger, so nothing here is
open to it. This app is installed by the test settings only.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import flush
from django.db import connections

from tests.support.superuser import superuser_role_steps


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        connection = connections[options["database"]]
        step_out, step_back = superuser_role_steps(connection)
        with connection.cursor() as cursor:
            for statement in step_out:
                cursor.execute(statement)
            cursor.execute("SET session_replication_role = replica")
        try:
            super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET session_replication_role")
                for statement in step_back:
                    cursor.execute(statement)
