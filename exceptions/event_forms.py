"""Forms of what a person does from an event's own page: retry it, replay it."""

from __future__ import annotations

from typing import Any

from django import forms

from exceptions.forms import RUN_VERSIONS, ActionForm, note_field


class EventRetryForm(forms.Form):
    note = note_field()


class EventReplayForm(forms.Form):
    run_version = forms.ChoiceField(
        label="Replay under", choices=RUN_VERSIONS, initial="original", widget=forms.RadioSelect
    )
    note = note_field()


class RecordOutcomeForm(ActionForm):
    """The outcome of a case handled by hand, with what shows it happened (or did not)."""

    status = forms.ChoiceField(
        label="Outcome",
        choices=[("achieved", "Achieved"), ("failed", "Failed")],
        initial="achieved",
        widget=forms.RadioSelect,
    )
    evidence = forms.CharField(
        label="Evidence",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What you did and what shows the outcome: a ticket, a record, a call.",
    )
    link = forms.URLField(
        label="Link to the record (optional)", required=False, max_length=500, assume_scheme="https"
    )


def outcome_params(data: dict[str, Any], actor: Any) -> dict[str, Any]:
    """A recorded outcome's form data as the case action reads it: status and evidence."""
    evidence = {"by_hand": data["evidence"]}
    if data.get("link"):
        evidence["link"] = data["link"]
    return {"status": data["status"], "evidence": evidence}
