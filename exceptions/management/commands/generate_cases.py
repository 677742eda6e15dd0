"""Generate a realistic backlog of events and exception cases, set-based, for load and looks.

    manage.py generate_cases --count 1000000

Every row is made by INSERT ... SELECT over generate_series inside PostgreSQL (no row crosses
into Python), so a million cases take a few minutes on two cores. It uses the workflows,
teams and people already there (`manage.py seed_demo` makes the demo set) and adds to what
exists. Events, their decisions and attempts and the cases look like the engine's: payloads
per workflow, missing fields, failed deliveries, review gates, SLA clocks from the workflow or
the reason code, owners, groups by fingerprint. Nothing is written to the audit trail: these
are records of an engine that never ran, for measuring and for screenshots, not history.
"""

# The SQL below is long by nature and assembled only from this module's own constants; every
# value from outside goes in as a parameter.
# ruff: noqa: E501, S608

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from exceptions.models import ReasonCode
from workflows.models import Team, Workflow
from workflows.rules import compiled_version

# kind -> reason, step. The mix of a queue that has been running a while.
KINDS = [
    ("validation_failed", "validate"),
    ("validation_failed", "validate"),
    ("validation_failed", "validate"),
    ("delivery_failed", "deliver"),
    ("delivery_failed", "deliver"),
    ("delivery_rejected", "deliver"),
    ("rule_error", "route"),
    ("review_required", "review"),
    ("no_owner", "route"),
    ("outcome_missing", "outcome"),
]

FIRST = "ARRAY['ana','ben','chloe','dmitri','elena','farah','george','hana','ivan','jules','kofi','lea','mateo','nina','omar','paula','quinn','rosa','sven','tara']"
LAST = "ARRAY['novak','okafor','schmidt','rossi','tanaka','dubois','silva','jensen','kowalski','moreau','nguyen','fischer','garcia','larsen','ibrahim','walsh']"
COMPANY = "ARRAY['acme','globex','initech','umbrella','hooli','vandelay','stark','wayne','tyrell','cyberdyne','soylent','wonka','gringotts','aperture','massive','oscorp']"

PAYLOADS = {
    "lead-routing": f"""jsonb_build_object(
        'email', ({FIRST})[g % 20 + 1] || '.' || ({LAST})[g % 16 + 1] || '@' || ({COMPANY})[g % 16 + 1] || '.com',
        'company', jsonb_build_object('name', initcap(({COMPANY})[g % 16 + 1]) || ' ' || (ARRAY['GmbH','Inc','Ltd','SA'])[g % 4 + 1], 'size', (g * 37) % 2400 + 3),
        'territory', (ARRAY['EMEA','NA','APAC','LATAM'])[g % 4 + 1],
        'source', 'web-form',
        'utm_campaign', (ARRAY['q4-webinar','pricing-page','partner-referral','newsletter'])[g % 4 + 1])""",
    "support-triage": f"""jsonb_build_object(
        'ticket_id', 'T-' || (200000 + g),
        'subject', (ARRAY['Checkout page returns 502','Invoice shows wrong VAT','Cannot reset password','Export to CSV times out','SSO login loops','API rate limit too low'])[g % 6 + 1],
        'category', (ARRAY['outage','billing','how-to','bug'])[g % 4 + 1],
        'customer', jsonb_build_object('tier', (ARRAY['enterprise','pro','free'])[g % 3 + 1], 'name', initcap(({COMPANY})[g % 16 + 1])),
        'reporter', ({FIRST})[g % 20 + 1] || '@' || ({COMPANY})[g % 16 + 1] || '.com')""",
    "refund-approval": f"""jsonb_build_object(
        'order_id', 'ORD-' || (500000 + g),
        'amount', round(((g::bigint * 7919) % 250000) / 100.0, 2),
        'currency', (ARRAY['EUR','USD','GBP'])[g % 3 + 1],
        'reason', (ARRAY['damaged in transit','arrived late','wrong size','duplicate charge'])[g % 4 + 1],
        'customer_email', ({FIRST})[g % 20 + 1] || '.' || ({LAST})[g % 16 + 1] || '@example.com')""",
}
# What each workflow's enrich rules compute, for the events that got that far.
CONTEXTS = {
    "lead-routing": """jsonb_build_object(
        'segment', CASE WHEN (p.payload #>> '{company,size}')::int >= 500 THEN 'enterprise' ELSE 'smb' END,
        'free_mail', false)""",
    "support-triage": """jsonb_build_object('urgency', CASE WHEN p.payload->>'category' = 'outage'
        OR p.payload #>> '{customer,tier}' = 'enterprise' THEN 'high' ELSE 'normal' END)""",
    "refund-approval": """jsonb_build_object('band', CASE WHEN (p.payload->>'amount')::numeric > 1000
        THEN 'large' WHEN (p.payload->>'amount')::numeric > 100 THEN 'medium' ELSE 'small' END)""",
}
GENERIC_PAYLOAD = (
    f"""jsonb_build_object('id', g, 'email', ({FIRST})[g % 20 + 1] || '@example.com')"""
)

DELIVERY_ERRORS = "ARRAY['ConnectError','ReadTimeout','HTTPStatus503']"
DELIVERY_MESSAGES = "ARRAY['connection refused by 10.0.4.12:443','no response within 10s','503 Service Unavailable from the destination']"


class Command(BaseCommand):
    help = "Generate COUNT exception cases (with their events) set-based, for load tests and looks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument(
            "--no-history",
            action="store_true",
            help="skip the decisions and attempts (faster; the queue does not read them)",
        )
        parser.add_argument(
            "--span-hours",
            type=float,
            default=None,
            help="spread opening times over this many hours back from now "
            "(default: about 90 seconds per case, at most 14 days)",
        )

    def handle(self, *args: Any, count: int, no_history: bool, span_hours: float | None,
               **options: Any) -> None:  # fmt: skip
        workflows = list(
            Workflow.objects.filter(current_version__isnull=False)
            .select_related("current_version")
            .order_by("slug")
        )
        if not workflows:
            raise CommandError("No workflows: load some first (manage.py seed_demo).")
        if count < 1:
            raise CommandError("--count must be at least 1")
        span = (
            timedelta(hours=span_hours)
            if span_hours
            else min(timedelta(days=14), timedelta(seconds=90 * count))
        )
        operators = list(
            get_user_model()
            .objects.filter(is_active=True, groups__name="operator")
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        started = time.monotonic()
        per_workflow = [count // len(workflows)] * len(workflows)
        per_workflow[0] += count - sum(per_workflow)
        for index, (workflow, n) in enumerate(zip(workflows, per_workflow, strict=True)):
            if n:
                self._generate(workflow, index, n, span, operators, not no_history)
                self.stdout.write(f"{workflow.slug}: {n} cases ({time.monotonic() - started:.0f}s)")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE workflows_event")
            cursor.execute("ANALYZE exceptions_exceptioncase")
        self.stdout.write(
            self.style.SUCCESS(f"Generated {count} cases in {time.monotonic() - started:.0f}s")
        )

    @transaction.atomic
    def _generate(
        self,
        workflow: Workflow,
        index: int,
        n: int,
        span: timedelta,
        operators: list[int],
        history: bool,
    ) -> None:
        version = workflow.current_version
        assert version is not None
        compiled = compiled_version(version)
        reasons = {r.code: r for r in ReasonCode.objects.all()}
        owner_team = Team.objects.filter(slug=compiled.owner).first()
        fallback = Team.objects.filter(slug__in=compiled.fallback_owners).order_by("pk").first()
        paths = [f.path for f in compiled.required_fields] or ["id"]
        gate = compiled.review[0] if compiled.review else None
        route = compiled.routes[0].rule.name if compiled.routes else "default"

        # kind -> reason, step, ack seconds, resolve seconds, for this workflow.
        kinds = []
        for kind, (reason_code, step) in enumerate(KINDS):
            if reason_code == "review_required" and gate is None:
                reason_code, step = "no_owner", "route"
            reason = reasons[reason_code]
            ack = compiled.acknowledge_within or reason.default_acknowledge_within
            resolve = compiled.resolve_within or reason.default_resolve_within
            kinds.append(
                (
                    kind,
                    reason_code,
                    step,
                    int(ack.total_seconds()) if ack else None,
                    int(resolve.total_seconds()) if resolve else None,
                )
            )
        kinds_sql = ", ".join(
            "(%s, %s, %s, %s::int, %s::int)" for _ in kinds
        )  # kind table as VALUES
        kinds_params = [value for row in kinds for value in row]
        payload_sql = PAYLOADS.get(workflow.slug, GENERIC_PAYLOAD).replace("%", "%%")
        context_sql = CONTEXTS.get(workflow.slug, "'{}'::jsonb")

        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval('workflows_event_id_seq')")
            (first,) = cursor.fetchone()
            base = first - 1
            cursor.execute("SELECT setval('workflows_event_id_seq', %s)", [base + n])
            # The offsets g spread over the span; (g * prime) mod n keeps them shuffled.
            common = f"""
                WITH k(kind, reason, step, ack, resolve) AS (VALUES {kinds_sql}),
                src AS (
                    SELECT g,
                        (g * 7 + %(index)s) %% 10 AS kind,
                        (g * 13) %% 20 AS st,
                        now() - make_interval(secs => ((g::bigint * 7919) %% %(n)s)
                            * %(span)s / %(n)s) AS at,
                        (%(paths)s::text[])[(g / 10) %% %(npaths)s + 1] AS missing
                    FROM generate_series(1, %(n)s) AS g
                )
            """  # noqa: S608
            params: dict[str, Any] = {
                "index": index,
                "n": n,
                "span": span.total_seconds(),
                "paths": paths,
                "npaths": len(paths),
            }
            # psycopg takes one style at a time: the VALUES rows become named parameters.
            for i, value in enumerate(kinds_params):
                common = common.replace("%s", f"%(k{i})s", 1)
                params[f"k{i}"] = value

            cursor.execute(
                common
                + f"""
                INSERT INTO workflows_event (
                    id, workflow_id, version_id, payload, payload_hash, source, headers,
                    idempotency_key, received_at, state, step, context, review_cleared,
                    attempt_count, claimed_by, updated_at, owner_team_id, pending_actor_label,
                    pending_trigger, completed_at)
                SELECT %(base)s + g, %(workflow)s, %(version)s,
                    CASE WHEN k.reason = 'validation_failed'
                        THEN p.payload #- string_to_array(missing, '.') ELSE p.payload END,
                    md5(g::text), 'generate_cases', '{{"content-type": "application/json"}}',
                    NULL, at,
                    CASE WHEN st < 16 THEN 'needs_attention'
                         WHEN st < 19 THEN 'failed' ELSE 'cancelled' END,
                    k.step,
                    CASE WHEN k.reason IN ('validation_failed', 'rule_error') THEN '{{}}'::jsonb
                         ELSE {context_sql} END,
                    false,
                    CASE WHEN k.step = 'deliver' THEN 3 ELSE 0 END, '', at,
                    %(team)s, 'system', 'auto',
                    CASE WHEN st >= 16 THEN at + interval '40 minutes' END
                FROM src JOIN k USING (kind)
                CROSS JOIN LATERAL (SELECT {payload_sql} AS payload) AS p
                ORDER BY g
                """,
                {
                    **params,
                    "base": base,
                    "workflow": workflow.pk,
                    "version": version.pk,
                    "team": owner_team.pk if owner_team else None,
                },
            )
            cursor.execute(
                common
                + f"""
                INSERT INTO exceptions_exceptioncase (
                    event_id, workflow_id, reason_id, step, detail, fingerprint, state,
                    owner_team_id, owner_user_id, opened_at, acknowledged_at, snoozed_until,
                    resolved_at, resolution_code, resolution_note, acknowledge_due_at,
                    resolve_due_at, sla_due_at, version, updated_at, search)
                SELECT e.id, %(workflow)s, k.reason, k.step, d.detail,
                    substr(encode(sha256(convert_to(
                        %(slug)s || chr(31) || k.reason || chr(31) || k.step || chr(31) || d.fkey,
                        'UTF8')), 'hex'), 1, 32),
                    s.state,
                    CASE WHEN k.reason = 'no_owner' THEN NULL
                         WHEN k.reason = 'review_required' THEN %(fallback)s ELSE %(team)s END,
                    CASE WHEN k.reason <> 'no_owner' AND cardinality(%(operators)s::int[]) > 0
                              AND (g * 17) %% 10 < 3
                         THEN (%(operators)s::int[])[g %% cardinality(%(operators)s::int[]) + 1]
                    END,
                    at,
                    CASE WHEN s.state <> 'open' THEN at + interval '12 minutes' END,
                    CASE WHEN s.state = 'snoozed' THEN now() + interval '3 hours' END,
                    CASE WHEN s.state IN ('resolved', 'dismissed') THEN at + interval '40 minutes' END,
                    CASE WHEN s.state = 'resolved' THEN 'fixed_downstream'
                         WHEN s.state = 'dismissed' THEN 'duplicate_event' ELSE '' END,
                    '',
                    at + make_interval(secs => k.ack),
                    at + make_interval(secs => k.resolve),
                    CASE WHEN s.state IN ('resolved', 'dismissed') THEN NULL
                         WHEN s.state = 'open' THEN LEAST(at + make_interval(secs => k.ack),
                                                         at + make_interval(secs => k.resolve))
                         ELSE at + make_interval(secs => k.resolve) END,
                    1, at,
                    to_tsvector('simple', d.detail)
                        || jsonb_to_tsvector('simple', e.payload, '["string", "numeric"]')
                FROM src JOIN k USING (kind)
                JOIN workflows_event AS e ON e.id = %(base)s + g
                CROSS JOIN LATERAL (SELECT CASE
                    WHEN s0 < 12 THEN 'open' WHEN s0 < 15 THEN 'acknowledged'
                    WHEN s0 < 16 THEN 'snoozed' WHEN s0 < 19 THEN 'resolved'
                    ELSE 'dismissed' END AS state FROM (SELECT st AS s0) AS x) AS s
                CROSS JOIN LATERAL (SELECT
                    CASE k.reason
                        WHEN 'validation_failed' THEN 'Missing required field ' || missing
                        WHEN 'delivery_failed' THEN 'Every retry failed: '
                            || ({DELIVERY_MESSAGES})[g %% 3 + 1]
                        WHEN 'delivery_rejected' THEN 'Destination refused the delivery: HTTP 422 '
                            || (ARRAY['unknown field "utm_campaign"','duplicate external id','account is archived'])[g %% 3 + 1]
                        WHEN 'rule_error' THEN 'Rule ' || %(route)s
                            || ' failed: no such field: payload.priority'
                        WHEN 'review_required' THEN %(gate_reason)s
                        WHEN 'no_owner' THEN 'No active owner: ' || %(slug)s
                            || ' routes to a team with no active members and the fallback chain is exhausted'
                        ELSE 'The destination did not confirm the outcome in time'
                    END AS detail,
                    CASE k.reason
                        WHEN 'validation_failed' THEN missing
                        WHEN 'delivery_failed' THEN ({DELIVERY_ERRORS})[g %% 3 + 1]
                        WHEN 'delivery_rejected' THEN 'HTTP 422'
                        WHEN 'rule_error' THEN 'MissingField'
                        WHEN 'review_required' THEN %(gate)s
                        ELSE '' END AS fkey) AS d
                ORDER BY g
                """,
                {
                    **params,
                    "base": base,
                    "workflow": workflow.pk,
                    "slug": workflow.slug,
                    "team": owner_team.pk if owner_team else None,
                    "fallback": getattr(fallback or owner_team, "pk", None),
                    "operators": operators,
                    "route": route,
                    "gate": gate.rule.name if gate else "",
                    "gate_reason": gate.reason if gate else "",
                },
            )
            if history:
                self._history(cursor, common, params, base=base, version=version.number,
                              route=route, npaths=len(paths))  # fmt: skip

    def _history(self, cursor: Any, common: str, params: dict[str, Any], *, base: int,
                 version: int, route: str, npaths: int) -> None:  # fmt: skip
        """Decisions (validate, then route) and, for deliveries, the failed attempts."""
        cursor.execute(
            common
            + """
            INSERT INTO workflows_decision (event_id, step, rule, version_number, inputs, result,
                                            ok, explanation, created_at)
            SELECT %(base)s + g, 'validate', 'required_fields', %(version)s, '{}'::jsonb,
                CASE WHEN k.reason = 'validation_failed'
                    THEN jsonb_build_object('missing', jsonb_build_array(missing))
                    ELSE '{"missing": []}'::jsonb END,
                k.reason <> 'validation_failed',
                CASE WHEN k.reason = 'validation_failed'
                    THEN 'Required field ' || missing || ' is missing, so the event cannot run.'
                    ELSE 'All ' || %(npaths)s || ' required fields are present with the right types.'
                END,
                at + interval '40 milliseconds'
            FROM src JOIN k USING (kind)
            UNION ALL
            SELECT %(base)s + g, 'route', %(route)s, %(version)s, '{}'::jsonb,
                jsonb_build_object('matched', k.reason <> 'rule_error'),
                k.reason NOT IN ('rule_error', 'no_owner'),
                CASE k.reason
                    WHEN 'rule_error' THEN 'Route ' || %(route)s || ' failed: no such field: payload.priority'
                    WHEN 'no_owner' THEN 'Route ' || %(route)s || ' matched, but its team has no active members and no fallback could take it.'
                    ELSE 'Route ' || %(route)s || ' matched first: owned by the route''s team.' END,
                at + interval '60 milliseconds'
            FROM src JOIN k USING (kind) WHERE k.reason <> 'validation_failed'
            """,  # noqa: S608
            {**params, "base": base, "version": version, "route": route, "npaths": npaths},
        )
        cursor.execute(
            common
            + f"""
            INSERT INTO workflows_attempt (event_id, number, trigger, actor_label, started_at,
                finished_at, status, http_status, error_class, error_message, duration_ms)
            SELECT %(base)s + g, n, 'auto', 'system',
                at + make_interval(secs => n * 30), at + make_interval(secs => n * 30 + 2),
                CASE WHEN k.reason = 'delivery_rejected' THEN 'rejected'
                     WHEN n = 3 THEN 'exhausted' ELSE 'failed' END,
                CASE WHEN k.reason = 'delivery_rejected' THEN 422
                     WHEN g %% 3 = 2 THEN 503 END,
                CASE WHEN k.reason = 'delivery_rejected' THEN 'HTTPStatus422'
                     ELSE ({DELIVERY_ERRORS})[g %% 3 + 1] END,
                CASE WHEN k.reason = 'delivery_rejected' THEN 'unknown field "utm_campaign"'
                     ELSE ({DELIVERY_MESSAGES})[g %% 3 + 1] END,
                CASE WHEN g %% 3 = 1 THEN 10000 ELSE 80 + (g * n) %% 900 END
            FROM src JOIN k USING (kind)
            CROSS JOIN LATERAL generate_series(1,
                CASE WHEN k.reason = 'delivery_rejected' THEN 1 ELSE 3 END) AS n
            WHERE k.step = 'deliver'
            """,  # noqa: S608
            {**params, "base": base},
        )
