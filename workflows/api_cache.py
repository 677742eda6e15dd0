"""Tokens and workflows as the API's hot path sees them: kept in process for a few seconds.

Ingest must cost little more than the INSERT it has to do, so a request does not read its token
and its workflow from the database each time: each process keeps what it read for
HANDOFF_API_CACHE_SECONDS (5 by default), at most MAX_ENTRIES of each. A change made in this
process (a revoked token, a new scope, a new inbound secret) clears the cache at once; a change
made in another process takes effect here within the bound. That bound is what the README
promises for revocation. The version an event is stored under is read by the INSERT itself,
never from here, so a new version applies to the very next event.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from workflows.models import ApiToken, Workflow

DEFAULT_CACHE_SECONDS = 5.0
MAX_ENTRIES = 1024

V = TypeVar("V")


def cache_seconds() -> float:
    return float(getattr(settings, "HANDOFF_API_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))


class BoundedCache(Generic[V]):
    """A least-recently-stored map whose entries expire after cache_seconds()."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, tuple[float, V]] = OrderedDict()

    def get(self, key: Any) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        # Wall-clock time, so tests can move it; a clock set back does not extend an entry.
        if not 0 <= time.time() - stored_at < cache_seconds():
            return None
        return value

    def put(self, key: Any, value: V) -> None:
        with self._lock:
            self._entries[key] = (time.time(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass(frozen=True)
class TokenGrant:
    """What a request needs of its token: who it is, whether it is revoked, its scope."""

    pk: int
    name: str
    token_hash: str
    all_workflows: bool
    revoked_at: datetime | None
    workflow_ids: frozenset[int]

    def as_token(self, last_used_at: datetime | None) -> ApiToken:
        # A fresh instance per request: nothing a request sets on it reaches another.
        return ApiToken(
            pk=self.pk,
            name=self.name,
            token_hash=self.token_hash,
            all_workflows=self.all_workflows,
            revoked_at=self.revoked_at,
            last_used_at=last_used_at,
        )


@dataclass(frozen=True)
class WorkflowRef:
    """What ingest needs of a workflow: its id, slug, inbound secret, whether it can run."""

    pk: int
    slug: str
    inbound_secret: str
    current_version_id: int | None

    def as_workflow(self) -> Workflow:
        return Workflow(
            pk=self.pk,
            slug=self.slug,
            inbound_secret=self.inbound_secret,
            current_version_id=self.current_version_id,
        )


_tokens: BoundedCache[TokenGrant] = BoundedCache()
_workflows: BoundedCache[WorkflowRef] = BoundedCache()
# When this process last recorded each token's use: saves the conditional UPDATE per request.
_last_used: dict[int, datetime] = {}


def token_grant(token_hash: str) -> TokenGrant | None:
    """The token with this hash, or None when there is none (misses are not kept)."""
    grant = _tokens.get(token_hash)
    if grant is not None:
        return grant
    found = ApiToken.objects.filter(token_hash=token_hash).first()
    if found is None:
        return None
    scope = frozenset(found.workflows.values_list("pk", flat=True))
    grant = TokenGrant(
        pk=found.pk,
        name=found.name,
        token_hash=found.token_hash,
        all_workflows=found.all_workflows,
        revoked_at=found.revoked_at,
        workflow_ids=scope,
    )
    _tokens.put(token_hash, grant)
    if found.last_used_at is not None:
        _last_used.setdefault(found.pk, found.last_used_at)
    return grant


def workflow_ref(slug: str) -> WorkflowRef | None:
    """The workflow with this slug, or None when there is none (misses are not kept)."""
    ref = _workflows.get(slug)
    if ref is not None:
        return ref
    row = (
        Workflow.objects.filter(slug=slug)
        .values_list("pk", "slug", "inbound_secret", "current_version_id")
        .first()
    )
    if row is None:
        return None
    ref = WorkflowRef(*row)
    _workflows.put(slug, ref)
    return ref


def last_used(token_pk: int) -> datetime | None:
    return _last_used.get(token_pk)


def note_used(token_pk: int, at: datetime) -> None:
    _last_used[token_pk] = at


def api_cache_clear() -> None:
    """Forget every token and workflow this process has read."""
    _tokens.clear()
    _workflows.clear()
    _last_used.clear()


def _changed(**kwargs: Any) -> None:
    # Now, and again once the change commits: a request between the two could have read the
    # old row back into the cache.
    api_cache_clear()
    transaction.on_commit(api_cache_clear)


for _model in (ApiToken, Workflow):
    post_save.connect(_changed, sender=_model, dispatch_uid=f"api_cache_save_{_model.__name__}")
    post_delete.connect(_changed, sender=_model, dispatch_uid=f"api_cache_del_{_model.__name__}")
m2m_changed.connect(_changed, sender=ApiToken.workflows.through, dispatch_uid="api_cache_scope")
