"""The processing engine (DESIGN.md sections 3-5): claim due events, run their steps, record why.

A worker claims a batch of due events (claims), runs each event's steps from where it stands
(steps: validate, enrich, route, review, deliver, outcome), delivers the batch's webhooks side by
side and writes the batch's records together (batch). Operators close, retry and replay events
(operator); a dry run runs the same steps with writes turned off (dry_run). Each step records its
decisions on a Run (run) in the engine's own words (wording).
"""

from __future__ import annotations

from workflows.services.engine.batch import (
    BatchResult,
    DrainResult,
    events_process_claimed,
    events_process_due,
)
from workflows.services.engine.claims import (
    DUE_STATES,
    events_claim_due,
    events_due_count,
    events_release_stale,
)
from workflows.services.engine.delivery import ERROR_MESSAGE_LIMIT
from workflows.services.engine.dry_run import DryRun, event_dry_run, payload_dry_run
from workflows.services.engine.operator import (
    RETRYABLE_STATES,
    EventNotRetryable,
    ReplayNotPossible,
    event_close,
    event_replay,
    event_retry,
    events_close,
    events_replay_prepare,
    events_replay_save,
)
from workflows.services.engine.outcomes import event_close_on_outcome, outcomes_expire_due
from workflows.services.engine.run import EVENT_FIELDS
from workflows.services.engine.steps import STEP_ORDER
from workflows.services.engine.validate import FieldProblem, validation_problems

__all__ = [
    "DUE_STATES",
    "ERROR_MESSAGE_LIMIT",
    "EVENT_FIELDS",
    "RETRYABLE_STATES",
    "STEP_ORDER",
    "BatchResult",
    "DrainResult",
    "DryRun",
    "EventNotRetryable",
    "FieldProblem",
    "ReplayNotPossible",
    "event_close",
    "event_close_on_outcome",
    "event_dry_run",
    "event_replay",
    "events_close",
    "events_replay_prepare",
    "events_replay_save",
    "event_retry",
    "events_claim_due",
    "events_due_count",
    "events_process_claimed",
    "events_process_due",
    "events_release_stale",
    "outcomes_expire_due",
    "payload_dry_run",
    "validation_problems",
]
