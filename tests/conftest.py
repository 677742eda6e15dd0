from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AbstractUser

from tests.factories import UserFactory


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
