"""What only the database's superuser can do: the tests that play an intruder with those powers.

When the suite runs as the application's restricted role (HANDOFF_TEST_APP_ROLE, see
tests/conftest.py), every statement runs as that role; the session still belongs to the test
database's owner, so these helpers step out of the role, do the deed, and step back in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection as default_connection


def superuser_role_steps(connection: Any) -> tuple[list[str], list[str]]:
    """The statements that leave the assumed role, and those that take it again."""
    role = connection.settings_dict.get("OPTIONS", {}).get("assume_role")
    if not role:
        return [], []
    quoted = connection.ops.quote_name(role)
    return ["SET ROLE NONE"], [f"SET ROLE {quoted}"]


@contextmanager
def triggers_off(connection: Any = default_connection) -> Iterator[Any]:
    """A cursor of a superuser session whose ordinary triggers do not fire (replica mode)."""
    step_out, step_back = superuser_role_steps(connection)
    with connection.cursor() as cursor:
        for statement in step_out:
            cursor.execute(statement)
        cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            yield cursor
        finally:
            cursor.execute("SET LOCAL session_replication_role = origin")
            for statement in step_back:
                cursor.execute(statement)


@contextmanager
def as_owner(connection: Any = default_connection) -> Iterator[None]:
    """Statements run as the tables' owner, whose triggers still fire: what the triggers
    themselves refuse, whatever the role's grants would have refused first."""
    step_out, step_back = superuser_role_steps(connection)
    with connection.cursor() as cursor:
        for statement in step_out:
            cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for statement in step_back:
                cursor.execute(statement)
