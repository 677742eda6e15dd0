"""Forms of the owners pages: teams, memberships, workflow ownership and people leaving."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model

from workflows.models import Membership, Team


def reason_field(required: bool = True, label: str = "Reason") -> forms.CharField:
    return forms.CharField(
        label=label if required else f"{label} (optional)",
        required=required,
        max_length=2000,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        error_messages={"required": "Say why: a reason is required."},
    )


def active_teams() -> Any:
    return Team.objects.filter(active=True).order_by("name")


class TeamCreateForm(forms.Form):
    slug = forms.SlugField(label="Slug", max_length=64, help_text="How definitions name it.")
    name = forms.CharField(label="Name", max_length=200)
    reason = reason_field(required=False)


class TeamRenameForm(forms.Form):
    name = forms.CharField(label="New name", max_length=200)
    reason = reason_field(required=False)


class ReasonForm(forms.Form):
    reason = reason_field()


class MembershipStartForm(forms.Form):
    person = forms.ModelChoiceField(
        label="Person",
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        to_field_name="username",
        empty_label="Choose a person…",
    )
    role = forms.ChoiceField(label="Role", choices=Membership.ROLE_CHOICES)
    reason = reason_field(required=False)


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Membership.ROLE_CHOICES)
    reason = reason_field(required=False)


class MembershipEndForm(forms.Form):
    reason = reason_field(required=False)


class TeamJoinForm(forms.Form):
    """From a person's page: put them on a team."""

    team = forms.ModelChoiceField(
        label="Team", queryset=active_teams(), to_field_name="slug", empty_label="Choose a team…"
    )
    role = forms.ChoiceField(label="Role", choices=Membership.ROLE_CHOICES)
    reason = reason_field(required=False)


class TeamChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.slug})"


class OwnershipForm(forms.Form):
    """A workflow's owner team and its fallback chain, in order, with the reason."""

    owner = TeamChoice(
        label="Owner team", queryset=active_teams(), to_field_name="slug", empty_label=None
    )
    reason = reason_field()

    def __init__(self, *args: Any, slots: int = 4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        teams = list(Team.objects.order_by("name").values_list("slug", "name", "active"))
        choices = [("", "(none)")] + [
            (slug, f"{name} ({slug})" + ("" if active else ", inactive"))
            for slug, name, active in teams
        ]
        for position in range(1, slots + 1):
            self.fields[f"fallback_{position}"] = forms.ChoiceField(
                label=f"Fallback {position}", choices=choices, required=False
            )
        self.slots = slots

    @property
    def fallback_fields(self) -> list[forms.BoundField]:
        return [self[f"fallback_{position}"] for position in range(1, self.slots + 1)]

    def fallbacks(self) -> list[str]:
        """The chosen fallbacks in order, gaps closed up."""
        data = self.cleaned_data
        return [
            data[f"fallback_{p}"] for p in range(1, self.slots + 1) if data.get(f"fallback_{p}")
        ]

    def owner_slug(self) -> str:
        return cast(Team, self.cleaned_data["owner"]).slug
