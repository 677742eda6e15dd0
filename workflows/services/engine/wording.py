"""How the engine puts values and durations into its plain-language explanations."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

EVIDENCE_SUMMARY_LENGTH = 200


def because(inputs: dict[str, Any]) -> str:
    """' because size was 800 and territory was EMEA' for the inputs a rule read, or ''."""
    parts = [f"{path.rsplit('.', 1)[-1]} was {plain(value)}" for path, value in inputs.items()]
    return " because " + " and ".join(parts) if parts else ""


def plain(value: Any) -> str:
    """A value as a sentence shows it: text bare, everything else as JSON."""
    return value if isinstance(value, str) else shorten(literal(value), 80)


def literal(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def evidence_summary(evidence: dict[str, Any]) -> str:
    """Outcome evidence in one short line, for explanations and case details."""
    if not evidence:
        return "none given"
    return shorten(
        json.dumps(evidence, sort_keys=True, ensure_ascii=False), EVIDENCE_SUMMARY_LENGTH
    )


def as_json(value: Any) -> Any:
    """What a JSON column will hold: CEL timestamps, durations and bytes become text."""
    return json.loads(json.dumps(value, cls=_LenientEncoder))


class _LenientEncoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, bytes):
            return o.decode("utf-8", errors="replace")
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def duration(delta: timedelta) -> str:
    """'10 minutes', '1 hour', '90 seconds', '0.5 seconds'."""
    seconds = delta.total_seconds()
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    if float(seconds).is_integer():
        count = int(seconds)
        return f"{count} second{'' if count == 1 else 's'}"
    return f"{seconds:g} seconds"
