"""Creating and revoking API tokens. The plaintext is returned once and never stored."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actors import actor_label
from audit.services import audit_record
from workflows.models import ApiToken, Workflow

TOKEN_PREFIX = "hnd_"  # noqa: S105 -- a marker that makes leaked tokens findable, not a secret
PREFIX_LENGTH = 12


class TokenError(ValueError):
    """A token request that cannot be honoured, with a message for the person who made it."""


def token_hash(plaintext: str) -> str:
    """What is stored and looked up: the SHA-256 of the token, hex."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _token_summary(token: ApiToken, slugs: list[str]) -> dict[str, Any]:
    # What the trail keeps: never the plaintext, never the hash.
    return {
        "name": token.name,
        "prefix": token.prefix,
        "all_workflows": token.all_workflows,
        "workflows": slugs,
        "revoked_at": token.revoked_at,
    }


@transaction.atomic
def api_token_create(
    *, name: str, workflow_slugs: list[str], all_workflows: bool = False, actor: Any
) -> tuple[ApiToken, str]:
    """Create a token scoped to the given workflows (or all); returns (token, plaintext)."""
    name = name.strip()
    if not name:
        raise TokenError("A token needs a name.")
    if len(name) > cast(int, ApiToken._meta.get_field("name").max_length):
        raise TokenError("A token name is at most 100 characters.")
    slugs = sorted(set(workflow_slugs))
    if all_workflows and slugs:
        raise TokenError("Scope a token either to named workflows or to all workflows, not both.")
    if not all_workflows and not slugs:
        raise TokenError("Scope the token to at least one workflow, or to all workflows.")
    workflows = list(Workflow.objects.filter(slug__in=slugs))
    unknown = sorted(set(slugs) - {w.slug for w in workflows})
    if unknown:
        raise TokenError(f"Unknown workflow: {', '.join(unknown)}")
    if ApiToken.objects.filter(name=name).exists():
        raise TokenError(f"A token named {name!r} already exists.")

    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        prefix=plaintext[:PREFIX_LENGTH],
        token_hash=token_hash(plaintext),
        all_workflows=all_workflows,
        created_by=actor_label(actor),
    )
    try:
        with transaction.atomic():
            token.save()
    except IntegrityError as exc:  # a concurrent create with the same name won
        raise TokenError(f"A token named {name!r} already exists.") from exc
    token.workflows.set(workflows)
    audit_record(
        actor=actor,
        action="api_token.create",
        target=token,
        after=_token_summary(token, slugs),
    )
    return token, plaintext


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: Any) -> ApiToken:
    """Revoke a token: every request carrying it is refused from now on."""
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise TokenError(f"The token {token.name!r} is already revoked.")
    slugs = sorted(token.workflows.values_list("slug", flat=True))
    before = _token_summary(token, slugs)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="api_token.revoke",
        target=token,
        before=before,
        after=_token_summary(token, slugs),
    )
    return token
