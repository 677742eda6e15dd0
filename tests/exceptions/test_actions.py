"""The registry of case actions drives every surface: the case page, the single action, the bulk
bar and its jobs, and the queue's keys."""

from __future__ import annotations

import copy
import re
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from audit.models import AuditEntry
from exceptions import actions, services
from exceptions.actions import ACTIONS, CaseAction
from exceptions.forms import ActionForm
from exceptions.models import BulkJob, CaseState, ExceptionCase
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
NAVIGATION_KEYS = {"j", "k", "x", "o", "Enter", "/", "?", "Escape"}


def posted_actions(body: str, pk: int) -> set[str]:
    """The case actions the page has a form for (a comment is not one: it changes no state)."""
    found = re.findall(rf'<form method="post" action="/exceptions/{pk}/(\w+)/"', body)
    return set(found) - {"comment"}


def bulk_choices(body: str) -> list[str]:
    select = re.search(
        r'<select name="action"[^>]*id="bulk-id_action"[^>]*>(.*?)</select>', body, re.S
    )
    assert select is not None
    return [v for v in re.findall(r'<option value="(\w*)"', select.group(1)) if v]


def keys_in_help(body: str) -> dict[str, str]:
    return dict(re.findall(r'data-action-key="([^"]+)" data-action="(\w+)"', body))


def test_every_action_of_the_registry_has_its_form_on_the_case_page(client, operator) -> None:
    case = factories.case()
    client.force_login(operator)
    body = client.get(f"/exceptions/{case.pk}/").content.decode()
    assert posted_actions(body, case.pk) == set(ACTIONS)
    services.case_acknowledge(case=case, actor=operator, version=case.version)
    body = client.get(f"/exceptions/{case.pk}/").content.decode()
    assert posted_actions(body, case.pk) == set(ACTIONS) - {"acknowledge"}  # it no longer applies


def test_the_bulk_bar_and_the_keys_come_from_the_registry(client, operator) -> None:
    factories.case()
    client.force_login(operator)
    body = client.get("/queue/").content.decode()
    assert bulk_choices(body) == [a.name for a in ACTIONS.values() if a.bulk]
    for action in ACTIONS.values():
        for name in action.arguments if action.bulk else []:
            assert f'data-for-action="{action.name}"><label for="bulk-id_{name}"' in body
    assert keys_in_help(body) == {a.key: a.name for a in ACTIONS.values() if a.key}
    # An action that needs a choice opens a dialog with its own form's fields.
    assert 'id="resolve-dialog"' in body and 'id="key-resolve-id_resolution"' in body


def test_an_auditor_is_offered_no_action_anywhere(client, auditor) -> None:
    case = factories.case()
    client.force_login(auditor)
    page = client.get(f"/exceptions/{case.pk}/").content.decode()
    assert posted_actions(page, case.pk) == set() and "Read only" in page
    queue = client.get("/queue/").content.decode()
    assert keys_in_help(queue) == {} and 'id="bulk-id_action"' not in queue
    assert "-dialog" not in queue


def test_keys_are_unique_and_leave_the_queue_its_navigation() -> None:
    keys = [a.key for a in ACTIONS.values() if a.key]
    assert len(keys) == len(set(keys)) and not set(keys) & NAVIGATION_KEYS


@pytest.fixture
def with_a_new_action(monkeypatch, settings, tmp_path):
    """One more registry entry and its partial, as a developer would add them."""
    partial = tmp_path / "exceptions" / "actions" / "take.html"
    partial.parent.mkdir(parents=True)
    partial.write_text(
        '<form method="post" action="{% url \'case-action\' case.pk action.name %}">'
        "{% csrf_token %}{{ form.version }}<button>Take it</button></form>"
    )
    templates = copy.deepcopy(django_settings.TEMPLATES)
    templates[0]["DIRS"] = [tmp_path, *templates[0]["DIRS"]]
    settings.TEMPLATES = templates

    def take(*, case, actor, version, note, params):
        services.case_claim(case=case, actor=actor, version=version, note=note)

    action = CaseAction(
        "take", "Take", ActionForm, take, "Case {pk} taken.", bulk=True, key="t", key_help="Take"
    )
    monkeypatch.setitem(ACTIONS, "take", action)
    return action


def test_one_entry_and_one_partial_add_an_action_to_every_surface(
    client, operator, with_a_new_action
) -> None:
    case, other = factories.case(), factories.case()
    client.force_login(operator)
    page = client.get(f"/exceptions/{case.pk}/").content.decode()
    assert "take" in posted_actions(page, case.pk) and "Take it" in page
    queue = client.get("/queue/").content.decode()
    assert "take" in bulk_choices(queue) and keys_in_help(queue)["t"] == "take"

    done = client.post(f"/exceptions/{case.pk}/take/", {"version": case.version}, **HTMX)
    assert done.status_code == 200 and f"Case {case.pk} taken." in done.content.decode()
    bulk = client.post(
        "/queue/bulk/", {"action": "take", "scope": "selected", "case": [other.pk]}, **HTMX
    )
    assert "Bulk take: 1 of 1 done." in bulk.content.decode()
    owners = ExceptionCase.objects.filter(pk__in=[case.pk, other.pk]).values_list("owner_user")
    assert {owner for (owner,) in owners} == {operator.pk}


def test_an_action_the_role_lacks_is_neither_offered_nor_done(
    client, operator, with_a_new_action, monkeypatch
) -> None:
    locked = CaseAction(**{**vars(with_a_new_action), "permission": "exceptions.delete_bulkjob"})
    monkeypatch.setitem(ACTIONS, "take", locked)
    case = factories.case()
    client.force_login(operator)
    assert "take" not in posted_actions(
        client.get(f"/exceptions/{case.pk}/").content.decode(), case.pk
    )
    queue = client.get("/queue/").content.decode()
    assert "take" not in bulk_choices(queue) and "t" not in keys_in_help(queue)
    assert client.post(f"/exceptions/{case.pk}/take/", {"version": 1}).status_code == 403
    refused = client.post(
        "/queue/bulk/", {"action": "take", "scope": "selected", "case": [case.pk]}, **HTMX
    )
    assert refused.status_code == 422 and not BulkJob.objects.exists()
    assert ExceptionCase.objects.get(pk=case.pk).owner_user is None


def test_jobs_stored_before_the_registry_still_run(operator) -> None:
    """Jobs keep their action name and params as they were stored: the registry reads them."""
    team = factories.team("sales-managers")
    until = (timezone.now() + timedelta(days=1)).isoformat()
    stored = {
        "assign": {"team": team.slug, "user": None},
        "snooze": {"until": until},
        "resolve": {"resolution": "duplicate"},
        "dismiss": {"reason": "spam"},
        "replay": {},  # from before the version was a choice: the original one
        "acknowledge": {},
        "retry": {},
    }
    for name, params in stored.items():
        case = factories.case()
        job = services.bulk_job_create(
            actor=operator,
            action=name,
            params=params,
            note="",
            cases=ExceptionCase.objects.filter(pk=case.pk),
            scope="stored",
        )
        job = services.bulk_job_run_inline(job=job)
        assert (name, job.succeeded, job.skipped, job.failed) == (name, 1, 0, 0)
    assert AuditEntry.objects.filter(action="case.replay").get().after["run_version"] == "original"
    assert ExceptionCase.objects.filter(state=CaseState.SNOOZED).count() == 1


def test_a_name_that_is_not_a_bulk_action_is_refused(operator) -> None:
    case = factories.case()
    for name in ("replay_edit", "delete_everything"):
        with pytest.raises(services.CaseActionRefused):
            services.bulk_job_create(
                actor=operator,
                action=name,
                params={},
                note="",
                cases=ExceptionCase.objects.filter(pk=case.pk),
                scope="x",
            )
    assert actions.bulk_action("resolve") is ACTIONS["resolve"]
