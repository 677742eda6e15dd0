"""Saved views of the queue: a person's named filters."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from exceptions.models import SavedView
from exceptions.services.cases import CaseActionRefused


@transaction.atomic
def saved_view_save(*, owner: Any, name: str, query: str) -> SavedView:
    """Create or replace the person's view of that name. A preference: not on the audit trail."""
    name = name.strip()
    if not name:
        raise CaseActionRefused("Give the view a name.")
    view, _ = SavedView.objects.update_or_create(
        owner=owner, name=name, defaults={"query": query, "created_at": timezone.now()}
    )
    return view


@transaction.atomic
def saved_view_delete(*, view: SavedView, actor: Any) -> None:
    if view.owner_id != actor.pk:
        raise CaseActionRefused("Only its owner can delete a saved view.")
    view.delete()
