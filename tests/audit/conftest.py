"""Fixtures of the audit tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.db import connection

from console.db_roles import app_role_grants


@pytest.fixture
def app_role() -> Iterator[str]:
    """Statements run as the application's production role: the one the suite assumes
    (HANDOFF_TEST_APP_ROLE), or else one made for this test, inside its transaction."""
    assumed = connection.settings_dict.get("OPTIONS", {}).get("assume_role")
    if assumed:
        yield assumed
        return
    role = f"handoff_app_test_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        for statement in app_role_grants(role, connection=connection):
            cursor.execute(statement)
        cursor.execute(f"SET LOCAL ROLE {role}")
    yield role
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
