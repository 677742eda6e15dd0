"""Processing a claimed batch: run each event's steps, deliver together, write together.

The batch's decisions, attempts, outcomes and new states are written in one transaction, only
for the events this worker still holds: a worker whose claim went stale and was taken over
cannot overwrite the newer state. Whatever needs a person is sent as attention_needed inside
that transaction, so the case exists if and only if its decision does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from workflows.delivery import webhooks_deliver
from workflows.models import Decision, Event, EventState, Outcome, ShapeDrift
from workflows.rules import compiled_version
from workflows.services.engine.claims import events_claim_due, events_due_count
from workflows.services.engine.delivery import ClaimLost, record_delivery, schedule_positions
from workflows.services.engine.failures import Failure, failures_record
from workflows.services.engine.outcomes import reported_outcomes, settle_confirmation
from workflows.services.engine.route import OwnerDirectory
from workflows.services.engine.run import EVENT_FIELDS, Run, send_attention, shape_profiles
from workflows.services.engine.steps import steps_run

logger = logging.getLogger(__name__)

# Seconds of the task's soft time limit kept back for writing the batch after its deliveries
# (a quarter of the limit when that is less).
WRITE_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    written: int
    lost: int  # claims taken over by another worker before this one wrote
    crashed: int  # runs that ended in an unexpected error, each counted against its event
    states: dict[str, int]


@dataclass(frozen=True)
class DrainResult:
    processed: int
    batches: int
    more_due: bool


def events_process_claimed(
    *, events: list[Event], deliver_until: float | None = None
) -> BatchResult:
    """Run a claimed batch and write its records. A rule that errors is a decision, not a crash;
    an unexpected error in one event's run is that event's failure, and the others go on.

    deliver_until (a time.monotonic() value) is when the batch's deliveries must be done by:
    what could not be sent in time waits for the next batch, unsent.
    """
    if not events:
        return BatchResult(claimed=0, written=0, lost=0, crashed=0, states={})
    token = events[0].claimed_by
    owners = OwnerDirectory()
    profiles = shape_profiles({event.workflow_id for event in events})
    runs: list[Run] = []
    failures: list[Failure] = []
    for event in events:
        try:
            run = Run(
                event=event,
                compiled=compiled_version(event.version),
                now=timezone.now(),
                shape_profile=profiles.get(event.workflow_id, {}),
            )
            steps_run(run, owners)
        except Exception as exc:
            failures.append(Failure.of(event, exc))
            continue
        runs.append(run)

    if deliver_until is None:
        deliver_until = time.monotonic() + delivery_budget_seconds()
    runs = _deliver_together(runs, token, deliver_until, failures)
    written, lost, unwritten = _write_runs(runs, token)
    failures.extend(unwritten)
    failures_record(failures=failures, token=token)
    states: dict[str, int] = {}
    for run in runs:
        if run.event.pk in written:
            states[run.event.state] = states.get(run.event.state, 0) + 1
    return BatchResult(
        claimed=len(events), written=len(written), lost=lost, crashed=len(failures), states=states
    )


def delivery_budget_seconds() -> float:
    """How long a batch may spend delivering: inside the task's soft time limit, with room left
    to write the batch, so a batch of slow destinations is never killed and sent again."""
    celery: dict[str, Any] = settings.CELERY
    soft_limit = float(celery.get("task_soft_time_limit") or 270)
    return max(1.0, soft_limit - min(WRITE_MARGIN_SECONDS, soft_limit / 4))


def _deliver_together(
    runs: list[Run], token: str, deliver_until: float, failures: list[Failure]
) -> list[Run]:
    """Send the batch's webhooks side by side and record each answer as it comes back.

    Only events this claim still holds are sent. Returns the runs that go on to be written: a
    run whose recording failed is that event's failure.
    """
    held = _held_ids([run for run in runs if run.delivery is not None], token)
    sending = [run for run in runs if run.delivery is not None and run.event.pk in held]
    if not sending:
        return runs
    positions = schedule_positions([run.event for run in sending])
    requests = [run.delivery for run in sending if run.delivery is not None]
    answered: set[int] = set()
    failed: set[int] = set()
    try:
        for index, result in webhooks_deliver(requests, deadline=deliver_until):
            run = sending[index]
            answered.add(run.event.pk)
            try:
                record_delivery(run, result, positions[run.event.pk], token=token)
            except ClaimLost:
                logger.warning(
                    "event %s: claim %s was taken over mid-delivery", run.event.pk, token
                )
                failed.add(run.event.pk)
            except Exception as exc:
                failures.append(Failure.of(run.event, exc))
                failed.add(run.event.pk)
    except Exception as exc:  # the sender itself broke: every unanswered delivery failed
        for run in sending:
            if run.event.pk not in answered:
                failures.append(Failure.of(run.event, exc))
                failed.add(run.event.pk)
    return [run for run in runs if run.event.pk not in failed]


def _held_ids(runs: list[Run], token: str) -> set[int]:
    if not runs:
        return set()
    return set(
        Event.objects.filter(
            id__in=[run.event.pk for run in runs], claimed_by=token, state=EventState.PROCESSING
        ).values_list("id", flat=True)
    )


def events_process_due(*, limit: int, worker: str, budget_seconds: float) -> DrainResult:
    """Claim and process batches until nothing is due or the time budget is spent."""
    started = time.monotonic()
    deliver_until = started + delivery_budget_seconds()
    processed = batches = 0
    while True:
        events = events_claim_due(limit=limit, worker=worker)
        if not events:
            return DrainResult(processed=processed, batches=batches, more_due=False)
        result = events_process_claimed(events=events, deliver_until=deliver_until)
        processed += result.written
        batches += 1
        if time.monotonic() - started >= budget_seconds:
            return DrainResult(
                processed=processed, batches=batches, more_due=events_due_count(cap=1) > 0
            )


def _write_runs(runs: list[Run], token: str) -> tuple[list[int], int, list[Failure]]:
    """Write the batch together; if that fails, event by event so one bad event does not hold
    the others. (written ids, lost claims, the failures of events that could not be written)"""
    if not runs:
        return [], 0, []
    try:
        written, lost = _write_batch_atomic(runs, token)
        return written, lost, []
    except Exception as exc:
        logger.exception("writing a batch of %d events failed", len(runs))
        if len(runs) == 1:
            return [], 0, [Failure.of(runs[0].event, exc)]
    written, lost, unwritten = [], 0, []
    for run in runs:
        try:
            done, gone = _write_batch_atomic([run], token)
        except Exception as exc:
            logger.exception("event %s: writing its records failed", run.event.pk)
            unwritten.append(Failure.of(run.event, exc))
            continue
        written.extend(done)
        lost += gone
    return written, lost, unwritten


@transaction.atomic
def _write_batch_atomic(runs: list[Run], token: str) -> tuple[list[int], int]:
    held_runs = _still_held(runs, token)
    lost = len(runs) - len(held_runs)
    if not held_runs:
        return [], lost
    confirming = [run for run in held_runs if run.awaiting_confirmation is not None]
    reported = reported_outcomes(
        (run.event.pk, run.awaiting_confirmation.started_at)
        for run in confirming
        if run.awaiting_confirmation is not None
    )
    # If this transaction fails the runs are written again one by one: undo what it added.
    marks = [(run, len(run.decisions), len(run.attention)) for run in confirming]
    try:
        for run in confirming:
            settle_confirmation(run, reported.get(run.event.pk))
        now = timezone.now()
        for run in held_runs:
            run.event.updated_at = now
            run.event.processing_failures = 0  # the run ended as the engine meant it to
        Decision.objects.bulk_create([d for run in held_runs for d in run.decisions])
        Outcome.objects.bulk_create([o for run in held_runs for o in run.outcomes])
        # Found again when a person reruns the event: the first finding stands.
        ShapeDrift.objects.bulk_create(
            [
                ShapeDrift(
                    event=run.event,
                    workflow_id=run.event.workflow_id,
                    received_at=run.event.received_at,
                    changes=run.shape_drift,
                )
                for run in held_runs
                if run.shape_drift
            ],
            ignore_conflicts=True,
        )
        _update_events([run.event for run in held_runs], token)
        send_attention(held_runs)
    except BaseException:
        for run, decisions, attention in marks:
            del run.decisions[decisions:]
            del run.attention[attention:]
        raise
    return [run.event.pk for run in held_runs], lost


def _still_held(runs: list[Run], token: str) -> list[Run]:
    """The runs whose events this claim still holds, locked until commit so the stale-claim
    sweeper cannot take them back half-written."""
    held = set(
        Event.objects.select_for_update()
        .filter(
            id__in=[run.event.pk for run in runs], claimed_by=token, state=EventState.PROCESSING
        )
        .values_list("id", flat=True)
    )
    for run in runs:
        if run.event.pk not in held:
            logger.warning(
                "event %s: claim %s was taken over; this worker's results are dropped",
                run.event.pk,
                token,
            )
    return [run for run in runs if run.event.pk in held]


def _update_events(events: list[Event], token: str) -> None:
    """One parametrized UPDATE per row, sent together (psycopg pipelines executemany).

    bulk_update's CASE expressions cost more Python time than the whole rest of a batch's
    write; the rows are locked and ours, so plain per-row updates are both simpler and faster.
    """
    # Every name in EVENT_FIELDS is a concrete column (not a reverse relation).
    fields = [cast("Field[Any, Any]", Event._meta.get_field(name)) for name in EVENT_FIELDS]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = (
        f"UPDATE {quote(Event._meta.db_table)} SET {assignments} "  # noqa: S608 (names from the model)
        f"WHERE id = %s AND claimed_by = %s AND state = %s"
    )
    rows = [
        [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
        + [event.pk, token, EventState.PROCESSING.value]
        for event in events
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
