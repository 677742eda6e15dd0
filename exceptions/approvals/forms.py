"""Forms of /approvals/: deciding a request (with what was shown bound in), editing one's own."""

from __future__ import annotations

from typing import Any

from django import forms

from exceptions.approvals.models import ApprovalRequest
from exceptions.approvals.services import Seen
from exceptions.forms import parse_payload


class DecideForm(forms.Form):
    """Approve or reject; the hidden fields carry the bound facts the approver was shown."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    payload_hash = forms.CharField(max_length=64, widget=forms.HiddenInput)
    workflow_version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    @classmethod
    def for_request(cls, approval: ApprovalRequest) -> DecideForm:
        return cls(
            initial={
                "version": approval.version,
                "payload_hash": approval.payload_hash,
                "workflow_version": approval.workflow_version_id,
            },
            auto_id=f"decide-{approval.pk}-%s",
        )

    def seen(self) -> Seen:
        data = self.cleaned_data
        return Seen(
            version=data["version"],
            payload_hash=data["payload_hash"],
            workflow_version_id=data["workflow_version"],
        )


class EditForm(forms.Form):
    """The requester changes their pending request: the reason, and an edited replay's payload."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    payload = forms.CharField(
        label="Edited payload (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "code"}),
    )
    reason = forms.CharField(label="Why", max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_payload(self) -> dict[str, Any] | None:
        text = self.cleaned_data["payload"]
        return parse_payload(text) if text.strip() else None
