"""What the commands that change sign-in state leave on the trail (the actor: audit.actors)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.db import transaction

from audit.actors import command_actor
from audit.services import audit_record

__all__ = ["command_actor", "locks_lifted", "logs_removed"]


@contextmanager
def locks_lifted(command: str, options: dict[str, Any]) -> Iterator[None]:
    """Run an axes_reset command in a transaction with an entry naming the locks it removed."""
    with transaction.atomic():
        before = set(AccessAttempt.objects.values_list("pk", "username", "ip_address"))
        yield
        after = set(AccessAttempt.objects.values_list("pk", "username", "ip_address"))
        removed = sorted(before - after)
        audit_record(
            actor=command_actor(command),
            action="auth.locks_reset",
            object_type="axes.accessattempt",
            before={"attempts": [{"username": u, "address": a} for _, u, a in removed]},
            after={"removed": len(removed)},
            reason=f"manage.py {command} {_arguments(options)}".strip(),
        )


@contextmanager
def logs_removed(command: str, options: dict[str, Any]) -> Iterator[None]:
    """Run an axes command that deletes sign-in logs, with an entry counting what went."""
    with transaction.atomic():
        before = {m._meta.label_lower: m.objects.count() for m in (AccessLog, AccessFailureLog)}
        yield
        after = {m._meta.label_lower: m.objects.count() for m in (AccessLog, AccessFailureLog)}
        audit_record(
            actor=command_actor(command),
            action="auth.signin_logs_reset",
            object_type="axes.accesslog",
            before=before,
            after=after,
            reason=f"manage.py {command} {_arguments(options)}".strip(),
        )


def _arguments(options: dict[str, Any]) -> str:
    """The command's own arguments as typed (addresses, usernames, an age)."""
    words: list[str] = []
    for name in ("ip", "username", "age"):
        value = options.get(name)
        if value:
            words += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return " ".join(words)
