"""What the outcome figures are measured over: a period cut into buckets, and the filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from workflows.models import Team, Workflow

PERIODS = [
    ("7", "Last 7 days"),
    ("30", "Last 30 days"),
    ("90", "Last 90 days"),
    ("custom", "Dates…"),
]
BUCKETS = [("auto", "Auto"), ("day", "Day"), ("week", "Week")]
# Past this many days a bucket of a day makes a chart too dense to read.
DAILY_UP_TO = 35
MAX_DAYS = 366


@dataclass(frozen=True)
class Scope:
    start: datetime  # inclusive, midnight in the console's time zone
    end: datetime  # exclusive
    unit: str  # "day" or "week" (weeks start on Monday, as date_trunc has them)
    workflow: Workflow | None = None
    team: Team | None = None
    version: int | None = None

    @property
    def last_day(self) -> date:
        """The period's last day (its end is the midnight after it)."""
        return self.end.date() - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def buckets(self) -> list[date]:
        """Every bucket's first day, in order, empty ones included."""
        first = self.start.date()
        if self.unit == "week":
            first -= timedelta(days=first.weekday())
        step = timedelta(days=7 if self.unit == "week" else 1)
        found = []
        day = first
        while day < self.end.date():
            found.append(day)
            day += step
        return found

    def query(self) -> dict[str, str]:
        """The filters as the page's query string has them (for links and the CSV)."""
        params = {
            "period": "custom",
            "start": self.start.date().isoformat(),
            "end": self.last_day.isoformat(),
            "bucket": self.unit,
        }
        if self.workflow is not None:
            params["workflow"] = self.workflow.slug
        if self.team is not None:
            params["team"] = self.team.slug
        if self.version is not None:
            params["version"] = str(self.version)
        return params


def midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class ScopeForm(forms.Form):
    """The page's filters. Anything missing or wrong falls back to the last 30 days, all."""

    period = forms.ChoiceField(choices=PERIODS, required=False, initial="30")
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    bucket = forms.ChoiceField(choices=BUCKETS, required=False, initial="auto")
    workflow = forms.ModelChoiceField(
        queryset=Workflow.objects.order_by("name"), to_field_name="slug", required=False
    )
    team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"), to_field_name="slug", required=False
    )
    version = forms.IntegerField(min_value=1, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("period") == "custom":
            start, end = data.get("start"), data.get("end")
            if start is None or end is None:
                raise forms.ValidationError("Choose both dates of the period.")
            if end < start:
                raise forms.ValidationError("The period ends before it starts.")
            if (end - start).days >= MAX_DAYS:
                raise forms.ValidationError(f"A period is at most {MAX_DAYS} days.")
        return data

    def scope(self, *, today: date | None = None) -> Scope:
        """The scope the form asks for (the default one when the form is not valid)."""
        today = today or timezone.localdate()
        data = self.cleaned_data if self.is_valid() else {}
        period = data.get("period") or "30"
        if period == "custom":
            first, last = data["start"], data["end"]
        else:
            last = today
            first = today - timedelta(days=int(period) - 1)
        start, end = midnight(first), midnight(last + timedelta(days=1))
        unit = data.get("bucket") or "auto"
        if unit == "auto":
            unit = "day" if (end - start).days <= DAILY_UP_TO else "week"
        return Scope(
            start=start,
            end=end,
            unit=unit,
            workflow=data.get("workflow"),
            team=data.get("team"),
            version=data.get("version"),
        )
