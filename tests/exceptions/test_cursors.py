"""Queue cursors: any value a person can put in the URL is a page or a 400, never a 500."""

from __future__ import annotations

import pytest

from exceptions import pagination, selectors
from exceptions.models import ExceptionCase
from tests import factories
from tests.support.cursors import GROUP_MALFORMED, MALFORMED

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, operator):
    factories.case()
    client.force_login(operator)
    return client


@pytest.mark.parametrize("direction", ["after", "before"])
@pytest.mark.parametrize("cursor", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_queue_cursor_is_400(signed_in, cursor: str, direction: str) -> None:
    response = signed_in.get("/queue/", {direction: cursor, "sort": "sla"})
    assert response.status_code == 400
    assert "not a valid page" in response.content.decode()


@pytest.mark.parametrize("cursor", GROUP_MALFORMED.values(), ids=GROUP_MALFORMED.keys())
def test_a_malformed_groups_cursor_is_400(signed_in, cursor: str) -> None:
    response = signed_in.get("/queue/", {"after": cursor, "group": "1"})
    assert response.status_code == 400


def test_a_malformed_cursor_in_an_htmx_request_is_400(signed_in) -> None:
    response = signed_in.get("/queue/", {"after": "garbage!!"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400


@pytest.mark.parametrize("sort", ["sla", "age", "newest", "workflow"])
@pytest.mark.parametrize("grouped", ["", "1"])
def test_the_cursors_the_queue_hands_out_lead_to_pages(signed_in, sort: str, grouped: str) -> None:
    for i in range(3):
        factories.case(key=f"field{i}")  # three groups, so grouped pages of one have a next
    pager = selectors.queue_groups_page if grouped else selectors.queue_page
    cases = ExceptionCase.objects.all()
    first = pager(queryset=cases, sort=sort, after="", before="", per=1)
    second = pager(queryset=cases, sort=sort, after=first.next_cursor, before="", per=1)
    assert first.next_cursor and second.prev_cursor
    for position in ({"after": first.next_cursor}, {"before": second.prev_cursor}):
        response = signed_in.get("/queue/", {"sort": sort, "group": grouped, **position})
        assert response.status_code == 200


def test_a_cursor_for_another_order_is_refused() -> None:
    cursor = pagination.encode_cursor([1, "2024-05-01T10:00:00+00:00", 7])  # the workflow order
    assert pagination.decode_cursor(cursor, selectors.SORT_SPECS["workflow"])
    with pytest.raises(pagination.InvalidCursor):
        pagination.decode_cursor(cursor, selectors.SORT_SPECS["sla"])


def test_an_action_from_a_queue_at_a_bad_position_shows_its_first_page(signed_in, operator) -> None:
    case = factories.case()
    response = signed_in.post(
        f"/exceptions/{case.pk}/acknowledge/",
        {"version": case.version},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver/queue/?after={MALFORMED['id is infinite']}",
    )
    assert response.status_code == 200
    assert f"Case {case.pk} acknowledged." in response.content.decode()
    assert ExceptionCase.objects.get(pk=case.pk).state == "acknowledged"
