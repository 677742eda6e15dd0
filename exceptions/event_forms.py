"""Forms of what a person does from an event's own page: retry it, replay it."""

from __future__ import annotations

from django import forms

from exceptions.forms import RUN_VERSIONS, note_field


class EventRetryForm(forms.Form):
    note = note_field()


class EventReplayForm(forms.Form):
    run_version = forms.ChoiceField(
        label="Replay under", choices=RUN_VERSIONS, initial="original", widget=forms.RadioSelect
    )
    note = note_field()
