"""Forms of the workflow page."""

from __future__ import annotations

from django import forms

from workflows.definition_text import definition_yaml
from workflows.models import Workflow
from workflows.simulation import DEFAULT_LAST, MAX_LAST

SIMULATE = "workflows.add_workflowversion"  # admins: whoever may load a version may try one


class SimulateForm(forms.Form):
    draft = forms.CharField(
        label="Draft definition (YAML)",
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false"}),
    )
    last = forms.IntegerField(
        label="Run it on the last", min_value=1, max_value=MAX_LAST, initial=DEFAULT_LAST
    )


def simulate_form(workflow: Workflow) -> SimulateForm:
    """The form, filled with the current version to edit."""
    current = workflow.current_version
    draft = definition_yaml(current.definition) if current is not None else ""
    return SimulateForm(initial={"draft": draft, "last": DEFAULT_LAST}, auto_id="sim-%s")
