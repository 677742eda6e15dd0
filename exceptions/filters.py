"""The queue's filters: what an operator narrows the exception queue by."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchQuery
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from exceptions.models import OPEN_STATES, CaseState, ExceptionCase, ReasonCode
from workflows.models import Team, Workflow
from workflows.owners import owner_username

ME, UNASSIGNED = "me", "none"
SORTS = [
    ("sla", "SLA due (soonest first)"),
    ("age", "Age (oldest first)"),
    ("newest", "Newest first"),
    ("workflow", "Workflow, then age"),
]
PAGE_SIZES = [("25", "25"), ("50", "50"), ("100", "100"), ("200", "200")]
# Parameters that are positions in the list or page furniture, not part of a view.
VOLATILE_PARAMS = ("after", "before", "job")


def view_query(params: QueryDict) -> str:
    """The query string that names a view: the filters, sort and size, not the position."""
    kept = params.copy()
    for name in VOLATILE_PARAMS:
        kept.pop(name, None)
    return kept.urlencode()


def people_choices() -> list[tuple[str, str]]:
    """Everyone active, and everyone who left but still owns open cases, labelled as such (their
    cases must stay findable, to be handed on)."""
    # One index probe per person who left (case_owner_user_idx), not a scan of open cases.
    left_with_work = Exists(
        ExceptionCase.objects.filter(owner_user=OuterRef("pk"), state__in=OPEN_STATES)
    )
    users = (
        get_user_model()
        .objects.filter(Q(is_active=True) | (Q(is_active=False) & left_with_work))
        .order_by("-is_active", "username")
    )
    return [
        (u.username, (u.get_full_name() or u.username) + ("" if u.is_active else " (left)"))
        for u in users.only("username", "first_name", "last_name", "is_active")
    ]


def team_choices() -> list[tuple[str, str]]:
    """Active teams, and inactive ones that still hold open cases, labelled as such."""
    with_work = Exists(
        ExceptionCase.objects.filter(owner_team=OuterRef("pk"), state__in=OPEN_STATES)
    )
    teams = Team.objects.filter(Q(active=True) | (Q(active=False) & with_work))
    teams = teams.order_by("-active", "name")
    return [(t.slug, t.name + ("" if t.active else " (inactive)")) for t in teams]


def filter_choices() -> dict[str, list[tuple[str, str]]]:
    """The options of the queue's selects, one plain query each (the page renders them)."""
    return {
        "workflow": list(Workflow.objects.order_by("name").values_list("slug", "name")),
        "reason": list(ReasonCode.objects.order_by("label").values_list("code", "label")),
        "team": team_choices(),
        "people": people_choices(),
    }


def _day_start(day: date) -> datetime:
    """Midnight of the day in the console's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


class CaseFilter(django_filters.FilterSet):
    """No state chosen means the open states: the queue is about work still to do."""

    q = django_filters.CharFilter(
        label="Search", method="filter_search", widget=forms.TextInput(attrs={"type": "search"})
    )
    state = django_filters.MultipleChoiceFilter(
        label="State",
        choices=CaseState.choices,
        method="filter_state",
        widget=forms.CheckboxSelectMultiple,
    )
    workflow = django_filters.ModelChoiceFilter(
        label="Workflow",
        queryset=Workflow.objects.only("id", "slug", "name").order_by("name"),
        to_field_name="slug",
        empty_label="Any workflow",
    )
    reason = django_filters.ModelChoiceFilter(
        label="Reason",
        queryset=ReasonCode.objects.only("id", "code", "label").order_by("label"),
        to_field_name="code",
        empty_label="Any reason",
    )
    team = django_filters.ModelChoiceFilter(
        label="Owner team",
        field_name="owner_team",
        queryset=Team.objects.only("id", "slug", "name").order_by("name"),
        to_field_name="slug",
        empty_label="Any team",
        # "No owner" (no team) is its own view, apart from "Unassigned" (no person).
        null_label="No team",
        null_value=UNASSIGNED,
    )
    # "me", "none" (unassigned) or a username; "user:<name>" always means the person, even one
    # called "me" (the API's form). A name nobody has matches nothing.
    owner = django_filters.CharFilter(label="Owner person", method="filter_owner")
    breached = django_filters.ChoiceFilter(
        label="SLA",
        choices=[("1", "Breached"), ("0", "Within SLA")],
        method="filter_breached",
        empty_label="Any",
    )
    received_after = django_filters.DateFilter(
        label="Received from",
        method="filter_received_after",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    received_before = django_filters.DateFilter(
        label="Received to",
        method="filter_received_before",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    fingerprint = django_filters.CharFilter(label="Group", widget=forms.HiddenInput)

    class Meta:
        model = ExceptionCase
        fields: list[str] = []

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user  # whom "me" means; nobody for the API's tokens

    @property
    def qs(self) -> QuerySet[ExceptionCase]:
        queryset = super().qs
        if not self.form.cleaned_data.get("state"):
            queryset = queryset.filter(state__in=OPEN_STATES)
        return queryset

    def filter_state(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(state__in=value) if value else queryset

    def filter_owner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == ME:
            return queryset.filter(owner_user=self.user) if self.user else queryset.none()
        if value == UNASSIGNED:
            return queryset.filter(owner_user__isnull=True)
        return queryset.filter(owner_user__username=owner_username(value) or value)

    def filter_breached(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # sla_due_at is the next running clock of an open case (empty once closed).
        breached = Q(sla_due_at__lt=timezone.now())
        return queryset.filter(breached if value == "1" else ~breached)

    def filter_received_after(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        return queryset.filter(event__received_at__gte=_day_start(value))

    def filter_received_before(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        # Inclusive of the whole day chosen.
        return queryset.filter(event__received_at__lt=_day_start(value + timedelta(days=1)))

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        query = SearchQuery(value, config="simple", search_type="websearch")
        by_words = Q(search=query)
        number = value.lstrip("#")
        if number.isdigit() and len(number) < 18:
            return queryset.filter(by_words | Q(pk=int(number)) | Q(event_id=int(number)))
        return queryset.filter(by_words)
