"""Forms of the operators' actions on cases, comments and saved views.

An action's form cleans what a person chose on the case page, in a keyboard dialog and in the
queue's bulk bar alike; the action registry (exceptions.actions) says which form is whose.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from exceptions.models import OPERATOR_RESOLUTIONS, DismissReason, ReasonCode
from workflows.models import Team
from workflows.services.ingest import PayloadRefused, payload_parse

SNOOZE_CHOICES = [
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("1d", "1 day"),
    ("3d", "3 days"),
    ("7d", "1 week"),
]
_SNOOZE = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
}
RUN_VERSIONS = [("original", "Original version"), ("current", "Current version")]
ME, UNASSIGNED = "me", "none"


def note_field(required: bool = False) -> forms.CharField:
    return forms.CharField(
        label="Note" if required else "Note (optional)",
        required=required,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def _team_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        label="Team",
        queryset=Team.objects.filter(active=True).order_by("name"),
        to_field_name="slug",
        required=False,
        empty_label="(keep the team)",
    )


def _person_choices() -> list[tuple[str, str]]:
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    people = [(u.username, u.get_full_name() or u.username) for u in users]
    return [("", "(keep the person)"), (ME, "Me"), (UNASSIGNED, "Nobody (unassign)"), *people]


class ActionForm(forms.Form):
    """Every action: the version the person was shown, and an optional note."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    note = note_field()


class AssignForm(ActionForm):
    team = _team_field()
    person = forms.ChoiceField(label="Person", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["person"]).choices = _person_choices()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("team") and not data.get("person"):
            raise forms.ValidationError("Choose a team, a person, or both.")
        return data


def person_value(value: str, *, me: Any) -> Any:
    """The user a person field names: "me", "none" (nobody), or a username."""
    if value == ME:
        return me
    if value == UNASSIGNED:
        return None
    return get_user_model().objects.get(username=value)


class SnoozeForm(ActionForm):
    duration = forms.ChoiceField(label="Snooze for", choices=SNOOZE_CHOICES, initial="4h")


def snooze_until(duration: str) -> datetime:
    """When a snooze chosen now for `duration` (one of SNOOZE_CHOICES) ends."""
    return timezone.now() + _SNOOZE[duration]


class ResolveForm(ActionForm):
    resolution = forms.ChoiceField(
        label="Resolution",
        choices=[("", "Choose a resolution…"), *OPERATOR_RESOLUTIONS],
        error_messages={"required": "Choose a resolution."},
    )


class DismissForm(ActionForm):
    reason = forms.ChoiceField(
        label="Dismiss reason",
        choices=[("", "Choose a reason…"), *DismissReason.choices],
        error_messages={"required": "Choose a dismiss reason."},
    )


class ReasonCodeChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.label} ({obj.code})"


class ReclassifyForm(ActionForm):
    """Another active reason code, and why."""

    code = ReasonCodeChoice(
        label="New reason code",
        queryset=ReasonCode.objects.filter(active=True).order_by("label"),
        to_field_name="code",
        empty_label="Choose a reason code…",
        error_messages={"required": "Choose the reason code."},
    )
    note = note_field(required=True)


class ReplayForm(ActionForm):
    run_version = forms.ChoiceField(
        label="Replay under", choices=RUN_VERSIONS, initial="original", widget=forms.RadioSelect
    )


def parse_payload(text: str) -> dict[str, Any]:
    """An edited payload, with the same limits as one the API receives."""
    try:
        return payload_parse(text)
    except PayloadRefused as exc:
        raise forms.ValidationError(str(exc)) from exc


class ReplayEditForm(ActionForm):
    """Replay with an edited payload: always under the current version, always with a reason."""

    payload = forms.CharField(
        label="Edited payload (JSON)",
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "data-json-editor": ""}),
    )
    note = note_field(required=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["note"].label = "Reason for the edit"

    def clean_payload(self) -> dict[str, Any]:
        return parse_payload(self.cleaned_data["payload"])


class PreviewForm(forms.Form):
    payload = forms.CharField()

    def clean_payload(self) -> dict[str, Any]:
        return parse_payload(self.cleaned_data["payload"])


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment", max_length=8000, widget=forms.Textarea(attrs={"rows": 3})
    )


class SavedViewForm(forms.Form):
    name = forms.CharField(label="Name this view", max_length=80)
    query = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
