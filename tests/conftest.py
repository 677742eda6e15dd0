from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import AbstractUser
from pytest_django import DjangoDbBlocker

from tests.factories import UserFactory
from tests.support.sinks import Sink


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    """With HANDOFF_TEST_APP_ROLE set, every test statement runs as the application's
    production role: the README's grants are applied to the test database, then each
    connection assumes that role (Django's assume_role). The session stays the owner's, so
    the suite's flush and tests playing a superuser intruder step out on purpose
    (tests/support/superuser.py); nothing else can."""
    role = os.environ.get("HANDOFF_TEST_APP_ROLE")
    if not role:
        yield
        return
    from django.conf import settings
    from django.db import connection, connections

    from console.db_roles import app_role_grants

    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            for statement in app_role_grants(role, connection=connection):
                cursor.execute(statement)
        for alias in connections:
            options = connections[alias].settings_dict.setdefault("OPTIONS", {})
            options["assume_role"] = role
            settings.DATABASES[alias].setdefault("OPTIONS", {})["assume_role"] = role
            connections[alias].close()
    yield
    # The owner drops the test database at the end, not the role.
    for alias in connections:
        connections[alias].settings_dict["OPTIONS"].pop("assume_role", None)
        settings.DATABASES[alias]["OPTIONS"].pop("assume_role", None)
        connections[alias].close()


@pytest.fixture(autouse=True)
def _fresh_api_cache() -> Iterator[None]:
    """Each test starts with no token or workflow remembered from another test's rows."""
    from workflows.api_cache import api_cache_clear

    api_cache_clear()
    yield
    api_cache_clear()


@pytest.fixture
def sink() -> Iterator[Sink]:
    """An HTTP destination on 127.0.0.1 that answers as scripted and keeps what it was sent."""
    running = Sink().start()
    yield running
    running.stop()


@pytest.fixture
def make_user(db: None) -> Callable[..., AbstractUser]:
    def make(*roles: str, **fields: object) -> AbstractUser:
        return UserFactory(roles=list(roles), **fields)

    return make


@pytest.fixture
def operator(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("operator", username="olivia")


@pytest.fixture
def auditor(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("auditor", username="avery")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every transactional test must restore the data migrations' rows (roles, reason codes).

    A transactional test empties the database when it ends. Without serialized_rollback its
    flush also re-creates content types under new ids, which breaks the next test that does
    restore the serialized state; so either all of them restore it or none can.
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        if (
            marker
            and marker.kwargs.get("transaction")
            and not marker.kwargs.get("serialized_rollback")
        ):
            raise pytest.UsageError(
                f"{item.nodeid}: use django_db(transaction=True, serialized_rollback=True)"
            )
