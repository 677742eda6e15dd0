"""Whatever body an integrator sends, ingest either stores exactly that object (2xx) or refuses
with an error code and stores nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import Api
from workflows.models import Event, Workflow

pytestmark = pytest.mark.django_db

PATH = "/workflows/lead-routing/events"
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.dictionaries(st.text(max_size=12), json_values, max_size=6).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=60),
)


def _numbers_exact(value: Any) -> Any:
    """JSON numbers as exact decimals: jsonb keeps 4.2e+16 as the integer it is, and Python
    would compare that int with the float it parsed from the request, which differ in the last
    digits of a float's binary form."""
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)


def _refused_with_a_code(response: Any) -> bool:
    error = response.json().get("error")
    return 400 <= response.status_code < 500 and bool(error and error.get("code"))


@PROPERTY_SETTINGS
@given(body=bodies)
def test_any_body_is_stored_as_sent_or_refused_with_a_code_and_nothing_stored(
    api: Api, workflow: Workflow, body: str | bytes
) -> None:
    before = Event.objects.count()
    response = api.post(PATH, raw=body)
    assert response.status_code < 500, response.content
    if 200 <= response.status_code < 300:
        event = Event.objects.get(pk=response.json()["id"])
        assert _numbers_exact(event.payload) == _numbers_exact(json.loads(body))
        assert Event.objects.count() == before + 1
    else:
        assert _refused_with_a_code(response), response.content
        assert Event.objects.count() == before


@PROPERTY_SETTINGS
@given(items=st.lists(st.one_of(json_values, st.dictionaries(st.text(max_size=8), json_values))))
def test_a_batch_is_stored_whole_or_refused_whole(
    api: Api, workflow: Workflow, items: list[Any]
) -> None:
    before = Event.objects.count()
    body = {"events": [{"payload": item} for item in items]}
    response = api.post(f"{PATH}/batch", body)
    assert response.status_code < 500, response.content
    if 200 <= response.status_code < 300:
        ids = [result["id"] for result in response.json()["results"]]
        stored = [Event.objects.get(pk=i).payload for i in ids]
        assert _numbers_exact(stored) == _numbers_exact(items)
        assert Event.objects.count() == before + len(items)
    else:
        assert _refused_with_a_code(response), response.content
        assert Event.objects.count() == before
