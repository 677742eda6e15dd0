"""Forms of the operators' actions on cases, bulk actions and saved views."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from exceptions.models import OPERATOR_RESOLUTIONS, BulkAction, DismissReason
from workflows.models import Team

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


def _note_field(required: bool = False) -> forms.CharField:
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
    note = _note_field()


class AssignForm(ActionForm):
    team = _team_field()
    person = forms.ChoiceField(label="Person", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = _person_choices()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
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

    def until(self) -> Any:
        return timezone.now() + _SNOOZE[self.cleaned_data["duration"]]


class ResolveForm(ActionForm):
    resolution = forms.ChoiceField(
        label="Resolution", choices=[("", "Choose a resolution…"), *OPERATOR_RESOLUTIONS]
    )


class DismissForm(ActionForm):
    reason = forms.ChoiceField(
        label="Dismiss reason", choices=[("", "Choose a reason…"), *DismissReason.choices]
    )


class ReplayForm(ActionForm):
    run_version = forms.ChoiceField(
        label="Run under", choices=RUN_VERSIONS, initial="original", widget=forms.RadioSelect
    )


def parse_payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from exc
    if not isinstance(value, dict):
        raise forms.ValidationError("The payload must be a JSON object ({ ... }).")
    return value


class ReplayEditForm(ActionForm):
    """Replay with an edited payload: always under the current version, always with a reason."""

    payload = forms.CharField(
        label="Edited payload (JSON)",
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "data-json-editor": ""}),
    )
    note = _note_field(required=True)

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


class BulkForm(forms.Form):
    """One action over the selected cases and groups, or over everything the filter matches."""

    action = forms.ChoiceField(label="Action", choices=[("", "Choose…"), *BulkAction.choices])
    scope = forms.ChoiceField(
        label="Apply to",
        choices=[("selected", "Selected rows"), ("matching", "Everything matching the filter")],
        initial="selected",
        widget=forms.RadioSelect,
    )
    case = forms.TypedMultipleChoiceField(coerce=int, required=False)
    group = forms.MultipleChoiceField(required=False)
    query = forms.CharField(required=False, widget=forms.HiddenInput)
    team = _team_field()
    person = forms.ChoiceField(label="Person", required=False)
    duration = forms.ChoiceField(
        label="Snooze for", choices=SNOOZE_CHOICES, initial="4h", required=False
    )
    resolution = forms.ChoiceField(
        label="Resolution",
        choices=[("", "—"), *OPERATOR_RESOLUTIONS],
        required=False,
    )
    reason = forms.ChoiceField(
        label="Dismiss reason", choices=[("", "—"), *DismissReason.choices], required=False
    )
    run_version = forms.ChoiceField(
        label="Replay under", choices=RUN_VERSIONS, initial="original", required=False
    )
    note = _note_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = _person_choices()
        # Any id or fingerprint may be posted; what they may touch is decided by the query.
        self.fields["case"].choices = [(v, v) for v in self.data.getlist("case")]
        self.fields["group"].choices = [(v, v) for v in self.data.getlist("group")]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = data.get("action")
        if data.get("scope") == "selected" and not data.get("case") and not data.get("group"):
            raise forms.ValidationError("Select at least one row, or apply to everything.")
        if action == BulkAction.ASSIGN and not data.get("team") and not data.get("person"):
            self.add_error("team", "Choose a team, a person, or both.")
        if action == BulkAction.RESOLVE and not data.get("resolution"):
            self.add_error("resolution", "Choose a resolution.")
        if action == BulkAction.DISMISS and not data.get("reason"):
            self.add_error("reason", "Choose a dismiss reason.")
        return data

    def params(self, *, me: Any) -> dict[str, Any]:
        """The action's arguments as the job stores them."""
        data, action = self.cleaned_data, self.cleaned_data["action"]
        if action == BulkAction.ASSIGN:
            params: dict[str, Any] = {}
            if data.get("team"):
                params["team"] = data["team"].slug
            if data.get("person"):
                person = person_value(data["person"], me=me)
                params["user"] = person.get_username() if person else None
            return params
        if action == BulkAction.SNOOZE:
            until = timezone.now() + _SNOOZE[data.get("duration") or "4h"]
            return {"until": until.isoformat()}
        if action == BulkAction.RESOLVE:
            return {"resolution": data["resolution"]}
        if action == BulkAction.DISMISS:
            return {"reason": data["reason"]}
        if action == BulkAction.REPLAY:
            return {"version": data.get("run_version") or "original"}
        return {}


class SavedViewForm(forms.Form):
    name = forms.CharField(label="Name this view", max_length=80)
    query = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
