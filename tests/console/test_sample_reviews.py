"""Sample reviews: twenty completed events at random (seeded, reproducible), marked, audited and
shown on the workflow page."""

from __future__ import annotations

import re

import pytest

from audit.models import AuditEntry
from tests import factories
from workflows.models import SampleReview, SampleReviewItem
from workflows.services.sample_reviews import sample_review_create, sample_review_mark

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    """Lead routing with 40 completed events, and 10 still open or dismissed."""
    workflow = factories.workflow()
    version = workflow.current_version
    done = [
        factories.event_create(
            version, factories.GOOD_LEAD, state="succeeded" if i % 4 else "failed"
        )
        for i in range(40)
    ]
    for state in ["received", "needs_attention", "cancelled"] * 3 + ["processing"]:
        factories.event_create(version, factories.GOOD_LEAD, state=state)
    return workflow, {e.pk for e in done}


def test_a_draw_takes_twenty_completed_events_and_the_same_seed_draws_the_same(
    history, make_user
) -> None:
    workflow, completed = history
    manager = make_user("manager", username="mia")
    first = sample_review_create(workflow=workflow, actor=manager, seed="audit-q3")
    picked = list(first.items.values_list("event_id", flat=True))
    assert len(picked) == len(set(picked)) == 20
    assert set(picked) <= completed
    again = sample_review_create(workflow=workflow, actor=manager, seed="audit-q3")
    assert list(again.items.values_list("event_id", flat=True)) == picked
    other = sample_review_create(workflow=workflow, actor=manager, seed="another")
    assert list(other.items.values_list("event_id", flat=True)) != picked
    # New events after the draw do not change what a seed drew: the review keeps its bounds.
    assert first.last_event_id == max(completed | {first.last_event_id})
    entry = AuditEntry.objects.filter(action="sample_review.create").first()
    assert entry.after["seed"] == "audit-q3" and entry.after["events"] == picked


def test_without_a_seed_each_draw_gets_its_own(history, make_user) -> None:
    workflow, _ = history
    manager = make_user("manager", username="mia")
    a = sample_review_create(workflow=workflow, actor=manager)
    b = sample_review_create(workflow=workflow, actor=manager)
    assert a.seed != b.seed and len(a.seed) == 16


def test_marks_are_kept_and_audited(history, make_user) -> None:
    workflow, _ = history
    manager = make_user("manager", username="mia")
    review = sample_review_create(workflow=workflow, actor=manager, seed="s")
    item = review.items.first()
    sample_review_mark(
        item=item,
        actor=manager,
        decision_path_clear=True,
        exception_caught_early=None,
        evidence_enough=False,
        note="No link to the CRM record",
    )
    item.refresh_from_db()
    assert (item.decision_path_clear, item.exception_caught_early, item.evidence_enough) == (
        True, None, False,
    )  # fmt: skip
    assert item.marked_by == manager and item.is_marked
    entry = AuditEntry.objects.get(action="sample_review.mark")
    assert entry.before["evidence_enough"] is None and entry.after["evidence_enough"] is False
    assert entry.after["note"] == "No link to the CRM record"


def test_a_manager_draws_and_marks_from_the_pages(history, client, make_user) -> None:
    workflow, _ = history
    client.force_login(make_user("manager", username="mia"))
    page = client.get("/workflows/lead-routing/").content.decode()
    assert "Pull 20 completed events at random" in page
    response = client.post("/workflows/lead-routing/samples/", {"seed": "q3"})
    review = SampleReview.objects.get()
    assert response["Location"] == f"/workflows/lead-routing/samples/{review.pk}/"
    body = client.get(response["Location"]).content.decode()
    assert len(re.findall(r"<tr data-item=", body)) == 20
    assert '<code data-testid="seed">q3</code>' in body
    item = review.items.order_by("position").first()
    marked = client.post(
        f"/workflows/lead-routing/samples/{review.pk}/items/{item.pk}/",
        {"decision_path_clear": "yes", "exception_caught_early": "no", "evidence_enough": "yes"},
        HTTP_HX_REQUEST="true",
    )
    row = marked.content.decode()
    assert row.lstrip().startswith(f'<tr data-item="{item.pk}"') and "saved · mia" in row
    page = client.get("/workflows/lead-routing/").content.decode()
    summary = re.search(r'data-testid="samples">(.*?)</section>', page, re.S).group(1)
    assert "1 of 20 marked" in summary
    assert 'Exception caught early?</dt><dd class="num">0 yes · 1 no' in summary


def test_an_operator_reads_reviews_but_cannot_draw_or_mark(history, client, make_user) -> None:
    workflow, _ = history
    review = sample_review_create(workflow=workflow, actor=make_user("manager"), seed="s")
    item = review.items.first()
    client.force_login(make_user("operator", username="olivia"))
    assert "Pull 20 completed events" not in client.get("/workflows/lead-routing/").content.decode()
    page = client.get(f"/workflows/lead-routing/samples/{review.pk}/")
    assert page.status_code == 200 and "<select" not in page.content.decode()
    assert client.post("/workflows/lead-routing/samples/").status_code == 403
    url = f"/workflows/lead-routing/samples/{review.pk}/items/{item.pk}/"
    assert client.post(url, {"decision_path_clear": "yes"}).status_code == 403
    assert not SampleReviewItem.objects.filter(marked_at__isnull=False).exists()


def test_a_workflow_with_nothing_completed_says_so(client, make_user) -> None:
    factories.workflow()
    client.force_login(make_user("manager"))
    response = client.post("/workflows/lead-routing/samples/", follow=True)
    assert "has no completed event in the last 30 days" in response.content.decode()
    assert not SampleReview.objects.exists()
