"""The filters of /events/: every event in any state, narrowed the way people look for one."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet

from exceptions.filters import _day_start
from workflows.models import Event, EventState, Outcome, OutcomeSource, Team, Workflow
from workflows.owners import owner_username
from workflows.payload_search import PayloadWords, payload_query

NO_OWNER = "none"
OUTCOME_CHOICES = [
    ("achieved", "Achieved"),
    ("failed", "Failed"),
    ("expired", "Expired (no confirmation)"),
    ("manual", "Recorded by a person"),
    ("none", "No outcome yet"),
]
EVENT_SORTS = [("newest", "Newest first"), ("oldest", "Oldest first")]


def latest_outcome_is(**conditions: Any) -> Exists:
    """The event's latest outcome (outcomes are appended; the last one counts) matches.

    Written as "an outcome that matches, with none after it" rather than as a subquery per
    event, so PostgreSQL can answer it as a semi-join from the few matching outcomes instead
    of looking up every event's latest one.
    """
    later = Outcome.objects.filter(event=OuterRef("event"), observed_at__gt=OuterRef("observed_at"))
    matching = Outcome.objects.filter(event=OuterRef("pk"), **conditions)
    return Exists(matching.exclude(Exists(later)))


def event_filter_choices() -> dict[str, list[tuple[str, str]]]:
    """The options of the filters' selects, one plain query each."""
    return {
        "workflow": list(Workflow.objects.order_by("name").values_list("slug", "name")),
        "team": list(Team.objects.order_by("name").values_list("slug", "name")),
        "state": list(EventState.choices),
        "outcome": OUTCOME_CHOICES,
        "sort": EVENT_SORTS,
    }


class EventFilter(django_filters.FilterSet):
    """Any state unless some are chosen: this list is about finding an event, not about work."""

    q = django_filters.CharFilter(label="Search the payload", method="filter_search")
    workflow = django_filters.ModelChoiceFilter(
        label="Workflow",
        queryset=Workflow.objects.only("id", "slug", "name").order_by("name"),
        to_field_name="slug",
        empty_label="Any workflow",
    )
    version = django_filters.NumberFilter(label="Version", field_name="version__number")
    # No join, so no DISTINCT: it would sort every match instead of walking the index.
    state = django_filters.MultipleChoiceFilter(
        label="State",
        choices=EventState.choices,
        widget=forms.CheckboxSelectMultiple,
        distinct=False,
    )
    # A team's slug, user:<username> for one person, or "none" for events nobody owns yet.
    owner = django_filters.CharFilter(label="Owner", method="filter_owner")
    received_after = django_filters.DateFilter(label="Received from", method="filter_after")
    received_before = django_filters.DateFilter(label="Received to", method="filter_before")
    outcome = django_filters.ChoiceFilter(
        label="Outcome", choices=OUTCOME_CHOICES, method="filter_outcome", empty_label="Any"
    )

    class Meta:
        model = Event
        fields: list[str] = []

    def filter_owner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == NO_OWNER:
            return queryset.filter(owner_team__isnull=True, owner_user__isnull=True)
        username = owner_username(value)
        if username is not None:
            return queryset.filter(owner_user__username=username)
        return queryset.filter(owner_team__slug=value)

    def filter_after(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        return queryset.filter(received_at__gte=_day_start(value))

    def filter_before(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        # Inclusive of the whole day chosen.
        return queryset.filter(received_at__lt=_day_start(value + timedelta(days=1)))

    def filter_outcome(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "none":
            return queryset.filter(~Exists(Outcome.objects.filter(event=OuterRef("pk"))))
        if value == "manual":
            return queryset.filter(latest_outcome_is(source=OutcomeSource.MANUAL))
        return queryset.filter(latest_outcome_is(status=value))

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        by_words = Q(payload_words=payload_query(value))
        queryset = queryset.alias(payload_words=PayloadWords())
        number = value.lstrip("#")
        if number.isdigit() and len(number) < 18:
            return queryset.filter(by_words | Q(pk=int(number)))
        return queryset.filter(by_words)


def events_matching(params: Any, *, queryset: QuerySet[Event] | None = None) -> QuerySet[Event]:
    """The events the filters match; none when a filter value names nothing there is."""
    filterset = EventFilter(params, queryset=Event.objects.all() if queryset is None else queryset)
    return filterset.qs if filterset.is_valid() else Event.objects.none()
