"""The queue, case and event pages through the test client."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEntry
from exceptions import selectors
from exceptions.models import BulkJob, CaseState, ExceptionCase, SavedView
from tests import factories
from workflows.models import Attempt, Outcome

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def case_ids(response) -> list[int]:
    return [int(i) for i in re.findall(r'data-case="(\d+)"', response.content.decode())]


@pytest.fixture
def signed_in(client, operator):
    client.force_login(operator)
    return client


def test_the_queue_lists_open_cases_with_what_an_operator_needs(signed_in, operator) -> None:
    mine = factories.case(owner=operator, detail="Missing required field email", key="email")
    theirs = factories.case()
    closed = factories.case(state=CaseState.RESOLVED, sla_due_at=None)
    response = signed_in.get("/queue/")
    assert response.status_code == 200
    body = response.content.decode()
    assert set(case_ids(response)) == {mine.pk, theirs.pk} and closed.pk not in case_ids(response)
    assert "Missing required field email" in body
    assert "Lead routing" in body and "Validation failed" in body
    assert "ack in 30m" in body or "ack in 29m" in body
    assert 'data-testid="count"' in body and '<strong class="num">2</strong>' in body
    assert response["Vary"].count("HX-Request") == 1


def test_an_htmx_request_returns_only_the_rows_fragment(signed_in) -> None:
    factories.case()
    full = signed_in.get("/queue/").content.decode()
    fragment = signed_in.get("/queue/", **HTMX).content.decode()
    assert full.lstrip().startswith("<!DOCTYPE html>")
    assert fragment.lstrip().startswith('<div id="results"')
    assert "<html" not in fragment and 'id="filters"' not in fragment
    assert fragment.rstrip().endswith("</div>")
    assert fragment.strip() in full  # one markup, served whole or as the fragment


def test_filters_narrow_the_queue(signed_in, operator) -> None:
    mine = factories.case(owner=operator)
    nobody = factories.case(
        reason="delivery_failed",
        detail="Every retry failed: ReadTimeout",
        key="ReadTimeout",
        step="deliver",
    )
    late = factories.case(payload={"email": "ivy@globex.test", "company": {"size": 3}})
    ExceptionCase.objects.filter(pk=late.pk).update(sla_due_at=timezone.now() - timedelta(hours=1))

    def ids(query: str) -> set[int]:
        return set(case_ids(signed_in.get(f"/queue/?{query}")))

    assert ids("owner=me") == {mine.pk}
    assert ids("owner=none") == {nobody.pk, late.pk}
    assert ids("reason=delivery_failed") == {nobody.pk}
    assert ids("breached=1") == {late.pk}
    assert ids("q=ivy@globex.test") == {late.pk}
    assert ids("q=ReadTimeout") == {nobody.pk}
    assert ids(f"q=%23{mine.pk}") == {mine.pk}
    assert ids("team=revenue-ops&workflow=lead-routing") == {nobody.pk, late.pk}
    assert ids("state=resolved") == set()
    today = timezone.now().date().isoformat()
    assert ids(f"received_after={today}&received_before={today}") == {mine.pk, nobody.pk, late.pk}


@pytest.mark.parametrize("query", ["workflow=no-such-flow", "reason=nothing", "team=nobody-team"])
def test_a_filter_naming_nothing_there_is_shows_no_cases_not_an_error(signed_in, query) -> None:
    factories.case()
    response = signed_in.get(f"/queue/?{query}")
    assert response.status_code == 200
    assert case_ids(response) == []
    assert '<strong class="num">0</strong> cases' in response.content.decode()


def test_keyset_pages_walk_every_case_once_in_order(signed_in) -> None:
    made = [factories.case() for _ in range(7)]
    now = timezone.now()
    for i, case in enumerate(made):
        ExceptionCase.objects.filter(pk=case.pk).update(opened_at=now - timedelta(minutes=i))
    seen, url = [], "/queue/?sort=age&per=25"
    # Three cases a page (the page's own sizes start at 25): walk the selector's cursors.
    queryset = ExceptionCase.objects.filter(state__in=["open"])
    page = selectors.queue_page(queryset=queryset, sort="age", after="", before="", per=3)
    while True:
        seen += [c.pk for c in page.rows]
        if not page.next_cursor:
            break
        page = selectors.queue_page(
            queryset=queryset, sort="age", after=page.next_cursor, before="", per=3
        )
    assert seen == [c.pk for c in reversed(made)]
    back = selectors.queue_page(
        queryset=queryset, sort="age", after="", before=page.prev_cursor, per=3
    )
    assert [c.pk for c in back.rows] == [c.pk for c in reversed(made)][3:6]
    response = signed_in.get(url)
    assert case_ids(response) == [c.pk for c in reversed(made)]


def test_the_queue_issues_the_same_queries_whatever_the_page_size(signed_in, operator) -> None:
    for i in range(60):
        factories.case(owner=operator if i % 2 else factories.team())
    counts = {}
    for per in (25, 50, 100):
        with CaptureQueriesContext(connection) as queries:
            response = signed_in.get(f"/queue/?per={per}")
        assert response.status_code == 200
        assert len(case_ids(response)) == min(per, 60)
        counts[per] = len(queries)
    assert counts[25] == counts[50] == counts[100], counts
    with CaptureQueriesContext(connection) as grouped:
        signed_in.get("/queue/?per=100&group=1")
    with CaptureQueriesContext(connection) as grouped_small:
        signed_in.get("/queue/?per=25&group=1")
    assert len(grouped) == len(grouped_small)


def test_groups_collapse_cases_with_the_same_fingerprint(signed_in) -> None:
    for _ in range(3):
        factories.case(key="company.size")
    other = factories.case(key="email", detail="Missing required field email")
    response = signed_in.get("/queue/?group=1")
    body = response.content.decode()
    assert len(re.findall(r'name="group" value="[0-9a-f]{32}"', body)) == 2
    assert "3 cases" in body
    fingerprint = other.fingerprint
    members = signed_in.get(f"/queue/groups/{fingerprint}/", **HTMX)
    assert case_ids(members) == [other.pk]
    plain = signed_in.get(f"/queue/groups/{fingerprint}/")
    assert plain.status_code == 302 and f"fingerprint={fingerprint}" in plain["Location"]


def test_the_case_page_tells_the_whole_story(signed_in) -> None:
    case = factories.case(payload={"email": "dana@example.com", "company": {"name": "Ex"}})
    factories.decision_add(
        case.event,
        step="route",
        rule="default",
        result={
            "route": "default",
            "matched_owner": "revenue-ops",
            "owner": "revenue-ops",
            "fallback": 0,
        },
        explanation="Route default matched first: owned by revenue-ops.",
    )
    now = timezone.now()
    Attempt.objects.create(
        event=case.event, number=1, trigger="auto", started_at=now, finished_at=now,
        status="rejected", http_status=422, error_class="HTTPStatus422",
        error_message="unknown field", duration_ms=84,
    )  # fmt: skip
    Outcome.objects.create(event=case.event, status="failed", source="callback", evidence={"x": 1})
    body = signed_in.get(f"/exceptions/{case.pk}/").content.decode()
    assert "company.size</code> is missing" in body
    assert "jl d1 jl-near" in body  # the object that should hold the missing field is marked
    decisions = re.search(r'data-testid="decisions">(.*?)</ol>', body, re.S)
    assert decisions is not None and "Missing required field company.size" in decisions.group(1)
    assert "Route default matched first" in body and "How the owner was chosen" in body
    assert "HTTPStatus422" in body and "84 ms" in body and ">422<" in body
    assert "Failed" in body and "Callback" in body
    assert 'data-testid="actions"' in body
    # The replay form shows what the current version makes of this payload: its panel names
    # the field this payload still lacks (the page's static wording alone never would).
    panel = re.search(r'data-testid="preview"[^>]*>(.*?)</div>', body, re.S)
    assert panel is not None and "company.size" in panel.group(1)


def test_the_event_page_shows_any_event(signed_in) -> None:
    case = factories.case()
    body = signed_in.get(f"/events/{case.event_id}/").content.decode()
    assert f"Case {case.pk}" in body and "Source payload" in body and "Decision log" in body
    assert signed_in.get("/events/999999/").status_code == 404


def test_an_action_from_the_case_page_returns_the_fresh_case(signed_in, operator) -> None:
    case = factories.case()
    response = signed_in.post(
        f"/exceptions/{case.pk}/claim/", {"version": case.version, "note": "on it"}, **HTMX
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="case"')
    assert f"Case {case.pk} is yours." in body
    assert AuditEntry.objects.get(action="case.claim").reason == "on it"


def test_a_stale_action_gets_409_the_message_and_the_fresh_state(signed_in, operator) -> None:
    case = factories.case()
    signed_in.post(f"/exceptions/{case.pk}/acknowledge/", {"version": case.version}, **HTMX)
    response = signed_in.post(
        f"/exceptions/{case.pk}/resolve/",
        {"version": case.version, "resolution": "duplicate"},
        **HTMX,
    )
    assert response.status_code == 409
    body = response.content.decode()
    assert "changed by someone else" in body and "Acknowledged" in body
    assert ExceptionCase.objects.get(pk=case.pk).state == CaseState.ACKNOWLEDGED


def test_without_htmx_actions_redirect_with_a_message(signed_in) -> None:
    case = factories.case()
    response = signed_in.post(
        f"/exceptions/{case.pk}/resolve/",
        {"version": case.version, "resolution": "not_a_problem"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/exceptions/{case.pk}/"
    assert f"Case {case.pk} resolved." in response.content.decode()
    missing = signed_in.post(f"/exceptions/{case.pk}/dismiss/", {"version": 2})
    assert missing.status_code == 422
    assert "Not done" in missing.content.decode()


def test_an_action_from_the_queue_rerenders_the_queue_it_came_from(signed_in, operator) -> None:
    case = factories.case(owner=operator)
    other = factories.case(owner=operator)
    response = signed_in.post(
        f"/exceptions/{case.pk}/resolve/",
        {"version": case.version, "resolution": "fixed_downstream"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/queue/?owner=me",
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="results"')
    assert case_ids(response) == [other.pk]


def test_auditors_see_everything_and_change_nothing(client, auditor) -> None:
    case = factories.case()
    client.force_login(auditor)
    queue = client.get("/queue/").content.decode()
    assert f'data-case="{case.pk}"' in queue
    assert 'id="bulk"' not in queue and 'name="case"' not in queue
    page = client.get(f"/exceptions/{case.pk}/").content.decode()
    assert 'data-testid="actions"' not in page and "Read only" in page
    assert "<button" not in page.split('<main id="main"')[1]
    for action in ("claim", "resolve", "replay"):
        assert client.post(f"/exceptions/{case.pk}/{action}/", {"version": 1}).status_code == 403
    assert client.post("/queue/bulk/", {"action": "acknowledge"}).status_code == 403
    assert client.post(f"/exceptions/{case.pk}/comment/", {"body": "x"}).status_code == 403
    assert ExceptionCase.objects.get(pk=case.pk).version == case.version


def test_people_without_a_role_cannot_see_the_queue(client, make_user) -> None:
    client.force_login(make_user(username="nobody"))
    assert client.get("/queue/").status_code == 403


def test_a_small_bulk_action_runs_in_the_request(signed_in, operator) -> None:
    cases = [factories.case() for _ in range(3)]
    ExceptionCase.objects.filter(pk=cases[2].pk).update(version=7)  # changed meanwhile: still fine
    response = signed_in.post(
        "/queue/bulk/",
        {
            "action": "acknowledge",
            "scope": "selected",
            "case": [c.pk for c in cases],
            "note": "triage",
        },
        **HTMX,
    )
    assert response.status_code == 200
    assert "Bulk acknowledge: 3 of 3 done." in response.content.decode()
    assert ExceptionCase.objects.filter(state="acknowledged").count() == 3
    assert AuditEntry.objects.filter(action="case.acknowledge", reason="triage").count() == 3
    job = BulkJob.objects.get()
    assert (job.state, job.done, job.succeeded) == ("done", 3, 3)


def test_bulk_over_everything_matching_a_filter(signed_in, operator) -> None:
    targets = [factories.case(owner=operator) for _ in range(2)]
    untouched = factories.case()
    response = signed_in.post(
        "/queue/bulk/",
        {"action": "resolve", "resolution": "duplicate", "scope": "matching", "query": "owner=me"},
    )
    assert response.status_code == 302
    assert {c.state for c in ExceptionCase.objects.filter(pk__in=[t.pk for t in targets])} == {
        "resolved"
    }
    assert ExceptionCase.objects.get(pk=untouched.pk).state == "open"


def test_bulk_needs_a_selection_and_the_actions_arguments(signed_in) -> None:
    factories.case()
    nothing = signed_in.post("/queue/bulk/", {"action": "acknowledge", "scope": "selected"}, **HTMX)
    assert nothing.status_code == 422 and "Select at least one row" in nothing.content.decode()
    no_code = signed_in.post(
        "/queue/bulk/", {"action": "resolve", "scope": "matching", "query": ""}, **HTMX
    )
    assert no_code.status_code == 422 and "Choose a resolution" in no_code.content.decode()


def test_a_large_bulk_action_becomes_a_job_the_page_polls(signed_in, operator, monkeypatch) -> None:
    from exceptions import services, tasks

    monkeypatch.setattr(services, "BULK_INLINE_MAX", 2)
    sent = []
    monkeypatch.setattr(tasks, "bulk_job_enqueue", lambda job_id: sent.append(job_id) or True)
    for _ in range(3):
        factories.case()
    response = signed_in.post(
        "/queue/bulk/", {"action": "acknowledge", "scope": "matching", "query": ""}, **HTMX
    )
    job = BulkJob.objects.get()
    assert sent == [job.pk]
    assert response["HX-Push-Url"].endswith(f"job={job.pk}")
    assert 'hx-trigger="every 1s"' in response.content.decode()
    reload = signed_in.get("/queue/")  # the session remembers it: a reload shows the same bar
    assert 'data-testid="bulk-job"' in reload.content.decode()
    tasks.bulk_run(job.pk)  # the task, called as the worker would
    progress = signed_in.get(f"/queue/jobs/{job.pk}/", **HTMX)
    assert "every 1s" not in progress.content.decode()
    assert "of 3 (100%) · 3 succeeded" in progress.content.decode()
    assert "queue-refresh" in progress["HX-Trigger"]
    assert 'data-testid="bulk-job"' not in signed_in.get("/queue/").content.decode()


def test_saved_views_are_per_person_and_shareable_by_url(signed_in, operator, make_user) -> None:
    response = signed_in.post(
        "/queue/views/", {"name": "Late leads", "query": "workflow=lead-routing&breached=1&after=x"}
    )
    view = SavedView.objects.get()
    assert (view.owner, view.query) == (operator, "workflow=lead-routing&breached=1")
    assert response["Location"] == "/queue/?workflow=lead-routing&breached=1"
    assert "Late leads" in signed_in.get("/queue/").content.decode()
    other = make_user("operator", username="priya")
    signed_in.force_login(other)
    assert "Late leads" not in signed_in.get("/queue/").content.decode()
    assert signed_in.post(f"/queue/views/{view.pk}/delete/").status_code == 404


def test_the_preview_endpoint_checks_an_edited_payload(signed_in, operator) -> None:
    case = factories.case()
    factories.MembershipFactory(user=operator, team=factories.team("sales-managers"))
    ok = signed_in.post(
        f"/exceptions/{case.pk}/preview/",
        {"payload": '{"email": "a@b.c", "company": {"size": 9000}}'},
        **HTMX,
    )
    body = ok.content.decode()
    assert "would wait for review" in body and "huge-deal" in body
    bad = signed_in.post(f"/exceptions/{case.pk}/preview/", {"payload": "[1, 2]"}, **HTMX)
    assert bad.status_code == 422 and "must be a JSON object" in bad.content.decode()


def test_reason_codes_changed_in_admin_are_audited(client, make_user) -> None:
    admin_person = make_user("admin", username="ada", is_staff=True, is_superuser=True)
    client.force_login(admin_person)
    response = client.post(
        "/admin/exceptions/reasoncode/add/",
        {
            "code": "fraud_suspected",
            "label": "Fraud suspected",
            "description": "",
            "default_acknowledge_within": "00:15:00",
            "default_resolve_within": "02:00:00",
            "note_required": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:500]
    entry = AuditEntry.objects.get(action="reason_code.create")
    assert entry.after["code"] == "fraud_suspected" and entry.actor_label == "ada"
    case_list = client.get("/admin/exceptions/exceptioncase/")
    assert case_list.status_code == 200
