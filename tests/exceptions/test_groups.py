"""The grouped queue: grouping every match and walking the open groups give the same pages.

Past GROUP_WALK_FROM matching open cases the groups are found by walking the open cases'
fingerprints; below it every match is grouped. Here both run over the same cases and must
agree on every page of every order and filter, except that a walked size stops counting at
GROUP_COUNT_LIMIT and says so.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.http import QueryDict
from django.utils import timezone

from exceptions import selectors
from exceptions.models import OPEN_STATES, ExceptionCase
from tests import factories

pytestmark = pytest.mark.django_db

WALK_ALWAYS = 0
WALK_NEVER = 10**9


@pytest.fixture
def cases(operator) -> list[ExceptionCase]:
    """Five problems, their cases spread over ages, deadlines, owners and states."""
    now = timezone.now()
    made = []
    for group in range(5):
        for i in range(group + 1):
            n = len(made)
            due = (
                None if (group, i) == (2, 0) or group == 4 else now + timedelta(minutes=7 * n - 40)
            )
            state = ["open", "acknowledged", "snoozed", "resolved"][n % 4]
            made.append(
                factories.case(
                    key=f"field{group}",
                    owner=operator if n % 3 == 0 else None,
                    opened_at=now - timedelta(hours=(n * 5) % 17, minutes=n),
                    sla_due_at=due if state != "resolved" else None,
                    state=state,
                )
            )
    return made


def all_pages(params: str, *, sort: str, walk_from: int, monkeypatch, per: int = 2) -> list[Any]:
    """Every group of every page, forwards by next cursor, as comparable tuples."""
    monkeypatch.setattr(selectors, "GROUP_WALK_FROM", walk_from)
    query = QueryDict(params)
    queryset = selectors.cases_matching(query)
    open_only = set(query.getlist("state")) <= set(OPEN_STATES)
    seen, after = [], ""
    for _ in range(20):
        page = selectors.queue_groups_page(
            queryset=queryset, sort=sort, after=after, before="", per=per, open_only=open_only
        )
        seen += [
            (g.fingerprint, g.size, g.workflow_id, g.oldest, g.due, g.size_is_floor)
            for g in page.rows
        ]
        if not page.next_cursor:
            return seen
        after = page.next_cursor
    raise AssertionError("the pages never ended")


OPEN = "state=open&state=acknowledged&state=snoozed"


@pytest.mark.parametrize("sort", ["sla", "age", "newest", "workflow"])
@pytest.mark.parametrize(
    "filters", ["", "&owner=none", "&state=open", "&q=field3", "&reason=validation_failed"]
)
def test_walking_the_groups_pages_as_grouping_them_does(
    cases, monkeypatch, sort: str, filters: str
) -> None:
    params = OPEN + filters if "state=" not in filters else filters.lstrip("&")
    grouped = all_pages(params, sort=sort, walk_from=WALK_NEVER, monkeypatch=monkeypatch)
    walked = all_pages(params, sort=sort, walk_from=WALK_ALWAYS, monkeypatch=monkeypatch)
    assert walked == grouped
    assert grouped, "the filter should match some groups"


def test_a_walked_group_at_the_count_limit_says_at_least(cases, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "GROUP_COUNT_LIMIT", 2)
    walked = all_pages(OPEN, sort="sla", walk_from=WALK_ALWAYS, monkeypatch=monkeypatch)
    open_sizes: dict[str, int] = {}
    for case in ExceptionCase.objects.filter(state__in=OPEN_STATES):
        open_sizes[case.fingerprint] = open_sizes.get(case.fingerprint, 0) + 1
    assert {fp: (size, floor) for fp, size, _, _, _, floor in walked} == {
        fp: (min(n, 2), n >= 2) for fp, n in open_sizes.items()
    }


def test_the_walk_moves_the_page_back_as_well(cases, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "GROUP_WALK_FROM", WALK_ALWAYS)
    queryset = selectors.cases_matching(QueryDict(OPEN))
    first = selectors.queue_groups_page(
        queryset=queryset, sort="age", after="", before="", per=2, open_only=True
    )
    second = selectors.queue_groups_page(
        queryset=queryset, sort="age", after=first.next_cursor, before="", per=2, open_only=True
    )
    back = selectors.queue_groups_page(
        queryset=queryset, sort="age", after="", before=second.prev_cursor, per=2, open_only=True
    )
    assert [g.fingerprint for g in back.rows] == [g.fingerprint for g in first.rows]
    assert not set(g.fingerprint for g in first.rows) & set(g.fingerprint for g in second.rows)


def test_closed_cases_are_grouped_even_past_the_walk_threshold(
    cases, monkeypatch, client, operator
) -> None:
    monkeypatch.setattr(selectors, "GROUP_WALK_FROM", WALK_ALWAYS)
    resolved_only = factories.case(key="only-resolved", state="resolved", sla_due_at=None)
    client.force_login(operator)
    body = client.get("/queue/?group=1&state=resolved").content.decode()
    assert resolved_only.fingerprint in body
    open_body = client.get("/queue/?group=1").content.decode()
    assert resolved_only.fingerprint not in open_body


def test_the_grouped_page_shows_an_at_least_size(cases, monkeypatch, client, operator) -> None:
    monkeypatch.setattr(selectors, "GROUP_WALK_FROM", WALK_ALWAYS)
    monkeypatch.setattr(selectors, "GROUP_COUNT_LIMIT", 2)
    client.force_login(operator)
    body = client.get("/queue/?group=1").content.decode()
    sizes = re.findall(r'hx-swap="innerHTML">(\d+\+?) cases</button>', body)
    assert sorted(sizes) == ["1", "2+", "2+", "2+", "2+"]
    assert "Select all 2 or more cases of this group" in body


def test_an_empty_filter_walks_nothing(monkeypatch, client, operator) -> None:
    monkeypatch.setattr(selectors, "GROUP_WALK_FROM", WALK_ALWAYS)
    client.force_login(operator)
    response = client.get("/queue/?group=1&workflow=no-such-workflow")
    assert response.status_code == 200
    assert "cases</button>" not in response.content.decode()
