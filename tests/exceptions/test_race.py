"""Two operators act on the same case at the same moment: one wins, the other is told."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections
from django.test import Client

from exceptions import services
from exceptions.models import CaseState, ExceptionCase
from exceptions.services import CaseConflict
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def race(*actions: Callable[[], object]) -> list[object]:
    """Run the actions in threads (each its own connection) released together."""
    start = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            start.wait()
            results[index] = action()
        except Exception as exc:  # the loser's exception is its result
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_operators_resolving_at_once_exactly_one_wins(make_user) -> None:
    first, second = (
        make_user("operator", username="olivia"),
        make_user("operator", username="priya"),
    )
    case = factories.case()
    shown = ExceptionCase.objects.get(pk=case.pk)

    results = race(
        lambda: services.case_resolve(
            case=shown, actor=first, resolution="fixed_data", version=shown.version, note="a"
        ),
        lambda: services.case_dismiss(
            case=shown, actor=second, reason="duplicate_event", version=shown.version, note="b"
        ),
    )
    conflicts = [r for r in results if isinstance(r, CaseConflict)]
    wins = [r for r in results if isinstance(r, ExceptionCase)]
    assert len(wins) == 1 and len(conflicts) == 1, results
    final = ExceptionCase.objects.get(pk=case.pk)
    assert final.version == shown.version + 1
    assert final.state == wins[0].state
    assert conflicts[0].case.state == final.state  # the loser is shown the winner's result
    assert connection.is_usable()


def test_the_losing_operator_sees_a_conflict_and_the_fresh_case(make_user) -> None:
    olivia, priya = (
        make_user("operator", username="olivia"),
        make_user("operator", username="priya"),
    )
    case = factories.case()
    browsers = []
    for person in (olivia, priya):
        client = Client()
        client.force_login(person)
        browsers.append(client)
    url = f"/exceptions/{case.pk}/acknowledge/"
    results = race(
        *(
            (lambda c=client: c.post(url, {"version": case.version}, HTTP_HX_REQUEST="true"))
            for client in browsers
        )
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 409], statuses
    loser = next(r for r in results if r.status_code == 409)
    body = loser.content.decode()
    assert "changed by someone else" in body
    assert 'data-testid="case-state">Acknowledged' in body
    assert ExceptionCase.objects.get(pk=case.pk).state == CaseState.ACKNOWLEDGED
