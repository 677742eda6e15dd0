"""The exceptions app's side of the engine's attention_needed signal."""

from __future__ import annotations

from typing import Any

from exceptions.services import case_open_or_join
from workflows.models import Event


def on_attention_needed(
    sender: Any,
    *,
    event: Event,
    reason_code: str,
    detail: str,
    owner: Any = None,
    step: str = "",
    fingerprint_key: str = "",
    **_: Any,
) -> None:
    # Runs inside the engine's transaction: the case exists if and only if the decision does.
    case_open_or_join(
        event=event,
        reason_code=reason_code,
        detail=detail,
        owner=owner,
        step=step,
        fingerprint_key=fingerprint_key,
    )
