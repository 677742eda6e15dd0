"""Generate a history of events in every state, with their outcomes, set-based, for load and looks.

    manage.py generate_events --count 1000000 --span-days 30

Where generate_cases makes a backlog (every event holds a case), this makes what a workflow's
history looks like: most events achieved by delivery (or confirmed by the destination), some
retried first, some handled by a person (cases acknowledged and closed, outcomes recorded by
hand), failures, dismissals, events still on their way; errors fall slowly over the span, so
the trends have a direction. Every row is made by INSERT ... SELECT over generate_series inside
PostgreSQL. Nothing is written to the audit trail and no decisions are made: these are records
of an engine that never ran, for measuring /events/ and /outcomes/ and for screenshots.
"""

# ruff: noqa: E501, S608

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from exceptions.management.commands.generate_cases import CONTEXTS, GENERIC_PAYLOAD, PAYLOADS
from workflows.models import Team, Workflow
from workflows.rules import compiled_version

# The events that do not simply succeed: (kind, state, outcome status, outcome source, reason,
# case state, resolution, attempts as "status,status,..."). A kind is chosen per event.
KINDS = [
    (0, "failed", None, None, "delivery_failed", "resolved", "fixed_downstream", "failed,failed,exhausted"),
    (1, "succeeded", "achieved", "manual", "delivery_failed", "resolved", "handled_manually", "failed,failed,exhausted"),
    (2, "needs_attention", None, None, "validation_failed", "open", "", ""),
    (3, "cancelled", None, None, "validation_failed", "dismissed", "duplicate_event", ""),
    (4, "succeeded", "achieved", "delivery", "review_required", "resolved", "approved", "succeeded"),
    (5, "needs_attention", "failed", "callback", "outcome_failed", "acknowledged", "", "succeeded"),
    (6, "succeeded", "achieved", "delivery", None, None, "", "failed,succeeded"),
    (7, "retry_scheduled", None, None, None, None, "", "failed"),
    (8, "failed", "failed", "manual", "rule_error", "resolved", "handled_manually", ""),
    (9, "needs_attention", "expired", "deadline", "outcome_missing", "open", "", "succeeded"),
]  # fmt: skip
KIND_COLUMNS = "kind, state, status, source, reason, case_state, resolution, attempts"

# Shared by every INSERT: one row per event offset g, with its time, kind and delays. The share
# of events that simply succeed grows by 10 points from the oldest to the newest, from 78% for
# the first workflow, 6 points less for each next one.
SOURCE = """
WITH k(kind, state, status, source, reason, case_state, resolution, attempts) AS (VALUES {kinds}),
src AS (
    SELECT g, %(base)s + g AS id, at, age,
        CASE WHEN (g * 7 + %(index)s) %% 100 < 78 - 6 * %(index)s + round(10 * (1 - age)) THEN NULL
             ELSE (g / 100 + g) %% 10 END AS kind,
        exp(((g * 37) %% 1000) / 1000.0 * 6) AS cycle,
        ((g * 13) %% 90 + 1) * 60 AS ack_after,
        ((g * 17) %% 290 + 10) * 60 AS resolve_after
    FROM generate_series(1, %(n)s) AS g
    CROSS JOIN LATERAL (SELECT ((g::bigint * 7919) %% %(n)s)::float / %(n)s AS age) AS a
    CROSS JOIN LATERAL (SELECT now() - make_interval(secs => age * %(span)s) AS at) AS t
)
"""


class Command(BaseCommand):
    help = "Generate COUNT events with their outcomes, attempts and cases, set-based."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--span-days", type=float, default=30.0)

    def handle(self, *args: Any, count: int, span_days: float, **options: Any) -> None:
        workflows = list(
            Workflow.objects.filter(current_version__isnull=False)
            .select_related("current_version")
            .order_by("slug")
        )
        if not workflows:
            raise CommandError("No workflows: load some first (manage.py seed_demo).")
        if count < 1:
            raise CommandError("--count must be at least 1")
        operator = (
            get_user_model()
            .objects.filter(is_active=True, groups__name="operator")
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        started = time.monotonic()
        per_workflow = [count // len(workflows)] * len(workflows)
        per_workflow[0] += count - sum(per_workflow)
        span = timedelta(days=span_days).total_seconds()
        for index, (workflow, n) in enumerate(zip(workflows, per_workflow, strict=True)):
            if n:
                self._generate(workflow, index, n, span, operator)
                self.stdout.write(
                    f"{workflow.slug}: {n} events ({time.monotonic() - started:.0f}s)"
                )
        with connection.cursor() as cursor:
            for table in ("workflows_event", "workflows_outcome", "workflows_attempt",
                          "exceptions_exceptioncase"):  # fmt: skip
                cursor.execute(f"ANALYZE {table}")
        self.stdout.write(
            self.style.SUCCESS(f"Generated {count} events in {time.monotonic() - started:.0f}s")
        )

    @transaction.atomic
    def _generate(
        self, workflow: Workflow, index: int, n: int, span: float, operator: int | None
    ) -> None:
        version = workflow.current_version
        assert version is not None
        compiled = compiled_version(version)
        owners = [route.owner for route in compiled.routes if not route.owner.startswith("user:")]
        teams: list[int | None] = list(
            Team.objects.filter(slug__in=owners).values_list("pk", flat=True)
        ) or [None]
        missing = compiled.required_fields[0].path if compiled.required_fields else "id"
        confirm = compiled.confirm_within.total_seconds() if compiled.confirm_within else 0.0
        kinds_sql = ", ".join(
            "(" + ", ".join(f"%(k{i}_{j})s" for j in range(len(row))) + ")"
            for i, row in enumerate(KINDS)
        )
        params: dict[str, Any] = {
            f"k{i}_{j}": value for i, row in enumerate(KINDS) for j, value in enumerate(row)
        }
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval('workflows_event_id_seq')")
            (first,) = cursor.fetchone()
            base = first - 1
            cursor.execute("SELECT setval('workflows_event_id_seq', %s)", [base + n])
            params.update(
                base=base,
                index=index,
                n=n,
                span=span,
                workflow=workflow.pk,
                version=version.pk,
                teams=teams,
                operator=operator,
                confirm=confirm,
                slug=workflow.slug,
                missing=missing.split("."),
                missing_path=missing,
            )
            common = SOURCE.format(kinds=kinds_sql) + " "
            payload = PAYLOADS.get(workflow.slug, GENERIC_PAYLOAD).replace("%", "%%")
            context = CONTEXTS.get(workflow.slug, "'{}'::jsonb")
            for statement in (_events(payload, context), OUTCOMES, ATTEMPTS, CASES):
                cursor.execute(common + statement, params)


def _events(payload: str, context: str) -> str:
    return f"""
INSERT INTO workflows_event (
    id, workflow_id, version_id, payload, payload_hash, source, headers, idempotency_key,
    received_at, state, step, context, review_cleared, attempt_count, claimed_by, updated_at,
    owner_team_id, owner_user_id, pending_actor_label, pending_trigger, completed_at,
    delivered_at, next_attempt_at)
SELECT src.id, %(workflow)s, %(version)s,
    CASE WHEN k.reason = 'validation_failed' THEN p.payload #- %(missing)s::text[] ELSE p.payload END,
    md5(src.id::text), 'generate_events', '{{"content-type": "application/json"}}', NULL, at,
    coalesce(k.state, 'succeeded'),
    CASE WHEN k.reason = 'validation_failed' THEN 'validate' WHEN k.reason = 'review_required'
         THEN 'outcome' WHEN k.state = 'retry_scheduled' THEN 'deliver' ELSE 'outcome' END,
    CASE WHEN k.reason = 'validation_failed' THEN '{{}}'::jsonb ELSE {context} END,
    coalesce(k.reason = 'review_required', false),
    CASE WHEN k.kind IS NULL THEN 1
         ELSE coalesce(cardinality(string_to_array(nullif(k.attempts, ''), ',')), 0) END, '', at,
    CASE WHEN k.reason = 'validation_failed' THEN NULL
         ELSE (%(teams)s::bigint[])[g %% cardinality(%(teams)s::bigint[]) + 1] END,
    NULL, 'system', 'auto',
    CASE WHEN coalesce(k.state, 'succeeded') IN ('succeeded', 'failed', 'cancelled')
         THEN at + make_interval(secs => cycle + %(confirm)s) END,
    CASE WHEN k.attempts LIKE '%%succeeded' OR k.kind IS NULL THEN at + make_interval(secs => cycle) END,
    CASE WHEN k.state = 'retry_scheduled' THEN now() + interval '5 minutes' END
FROM src LEFT JOIN k USING (kind)
CROSS JOIN LATERAL (SELECT {payload} AS payload) AS p
ORDER BY g
"""


OUTCOMES = """
INSERT INTO workflows_outcome (event_id, status, source, evidence, reported_by, observed_at)
SELECT src.id, coalesce(k.status, 'achieved'),
    coalesce(k.source, CASE WHEN %(confirm)s > 0 THEN 'callback' ELSE 'delivery' END),
    CASE WHEN k.source = 'manual' THEN '{"by_hand": "Handled in the destination by hand"}'::jsonb
         ELSE '{"http_status": 200}'::jsonb END,
    CASE WHEN k.source = 'manual' THEN 'olivia' ELSE '' END,
    CASE WHEN k.source = 'manual' THEN at + make_interval(secs => 2 + ack_after + resolve_after)
         WHEN k.source = 'deadline' THEN at + make_interval(secs => cycle + greatest(%(confirm)s, 120))
         ELSE at + make_interval(secs => cycle + %(confirm)s * ((g * 31) %% 100) / 100.0) END
FROM src LEFT JOIN k USING (kind)
WHERE k.kind IS NULL OR k.status IS NOT NULL
"""

ATTEMPTS = """
INSERT INTO workflows_attempt (event_id, number, trigger, actor_label, started_at, finished_at,
    status, http_status, error_class, error_message, duration_ms, superseded)
SELECT src.id, a.number, 'auto', 'system',
    at + make_interval(secs => (a.number - 1) * 30), at + make_interval(secs => (a.number - 1) * 30 + 1),
    a.status, CASE WHEN a.status = 'succeeded' THEN 200 WHEN g %% 2 = 0 THEN 503 END,
    CASE WHEN a.status = 'succeeded' THEN '' WHEN g %% 2 = 0 THEN 'HTTPStatus503' ELSE 'ReadTimeout' END,
    CASE WHEN a.status = 'succeeded' THEN '' WHEN g %% 2 = 0 THEN '503 Service Unavailable'
         ELSE 'no response within 10s' END,
    80 + (g * a.number) %% 900, false
FROM src LEFT JOIN k USING (kind)
CROSS JOIN LATERAL unnest(string_to_array(coalesce(k.attempts, 'succeeded'), ','))
    WITH ORDINALITY AS a(status, number)
WHERE coalesce(k.attempts, 'succeeded') <> ''
"""

CASES = """
INSERT INTO exceptions_exceptioncase (
    event_id, workflow_id, reason_id, step, detail, fingerprint, state, owner_team_id,
    owner_user_id, opened_at, acknowledged_at, snoozed_until, resolved_at, resolution_code,
    resolution_note, acknowledge_due_at, resolve_due_at, sla_due_at, closed_by_id, version,
    updated_at, search)
SELECT src.id, %(workflow)s, k.reason, d.step, d.detail,
    substr(md5(%(slug)s || k.reason || d.step), 1, 32), k.case_state,
    (%(teams)s::bigint[])[g %% cardinality(%(teams)s::bigint[]) + 1],
    CASE WHEN k.case_state <> 'open' THEN %(operator)s::integer END,
    o.opened, CASE WHEN k.case_state <> 'open' THEN o.opened + make_interval(secs => ack_after) END,
    NULL,
    CASE WHEN k.case_state IN ('resolved', 'dismissed')
         THEN o.opened + make_interval(secs => ack_after + resolve_after) END,
    k.resolution, '', o.opened + interval '30 minutes', o.opened + interval '4 hours',
    CASE WHEN k.case_state = 'open' THEN o.opened + interval '30 minutes'
         WHEN k.case_state = 'acknowledged' THEN o.opened + interval '4 hours' END,
    CASE WHEN k.case_state IN ('resolved', 'dismissed') THEN %(operator)s::integer END,
    1, o.opened,
    to_tsvector('simple', d.detail) || jsonb_to_tsvector('simple', e.payload, '["string", "numeric"]')
FROM src JOIN k USING (kind)
JOIN workflows_event e ON e.id = src.id
CROSS JOIN LATERAL (SELECT at + interval '2 seconds' AS opened) AS o
CROSS JOIN LATERAL (SELECT
    CASE k.reason WHEN 'validation_failed' THEN 'validate' WHEN 'rule_error' THEN 'route'
        WHEN 'review_required' THEN 'review' WHEN 'delivery_failed' THEN 'deliver' ELSE 'outcome' END AS step,
    CASE k.reason
        WHEN 'validation_failed' THEN 'Missing required field ' || %(missing_path)s
        WHEN 'delivery_failed' THEN 'Every retry failed: no response within 10s'
        WHEN 'rule_error' THEN 'Rule default failed: no such field: payload.priority'
        WHEN 'review_required' THEN 'Needs a manager''s review'
        WHEN 'outcome_failed' THEN 'The destination reported the outcome failed'
        ELSE 'The destination did not confirm the outcome in time' END AS detail) AS d
WHERE k.reason IS NOT NULL
"""
