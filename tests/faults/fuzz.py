"""Fuzzing the running API from its own OpenAPI schema: every operation, authenticated, with
requests that fit the schema and requests that do not.

Promises checked on every answer: never a 5xx; every 4xx is the error shape with a code; and
nothing is stored from a refused request (the events stored during the run are exactly the ones
some 2xx answer named).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from tests.faults.scenarios import Report, Sizes, timed
from tests.faults.stack import Stack

SLUG = "faults-fuzz"


def _error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code else None


def _accepted_ids(body: Any) -> set[int]:
    if not isinstance(body, dict):
        return set()
    if isinstance(body.get("results"), list):
        return {r["id"] for r in body["results"] if isinstance(r, dict) and "id" in r}
    return {body["id"]} if isinstance(body.get("id"), int) and "duplicate" in body else set()


@timed
def fuzz_api(stack: Stack, sizes: Sizes) -> Report:
    """Schema-driven requests against every operation of /api/v1/openapi.json."""
    report = Report("fuzz /api/v1 (schemathesis)")
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/api/v1/openapi.json")
    auth = {"Authorization": f"Bearer {stack.tokens[SLUG]}"}
    events_before = {row[0] for row in stack.sql("SELECT id FROM workflows_event")}
    outcomes_before = stack.sql("SELECT count(*) FROM workflows_outcome")[0][0]
    statuses: Counter[int] = Counter()
    accepted: set[int] = set()
    outcome_posts = 0
    operations: list[str] = []
    examples = settings(
        max_examples=sizes.fuzz_examples,
        # The short form (CI) tries the same examples every run; the full one explores.
        derandomize=sizes.fuzz_examples < Sizes.full().fuzz_examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )

    for result in schema.get_all_operations():
        operation = result.ok()
        operations.append(f"{operation.method.upper()} {operation.path}")
        # Half the runs aim at the workflow the token may use, so requests get past the slug.
        known = {"slug": SLUG} if "{slug}" in operation.path else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in {None, None if known is None else "known"}:
                strategy = operation.as_strategy(
                    generation_mode=mode,
                    path_parameters=known if path_parameters else None,
                )

                @examples
                @given(case=strategy)
                def run(case: Any) -> None:
                    nonlocal outcome_posts
                    response = case.call(base_url=stack.base_url, headers=auth, timeout=15)
                    statuses[response.status_code] += 1
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    where = f"{case.method} {case.formatted_path}"
                    if response.status_code >= 500:
                        report.problems.append(f"{where}: {response.status_code} {body!r:.200}")
                    elif response.status_code >= 400 and _error_code(body) is None:
                        report.problems.append(
                            f"{where}: {response.status_code} without an error code: "
                            f"{response.text[:200]!r}"
                        )
                    elif 200 <= response.status_code < 300:
                        accepted.update(_accepted_ids(body))
                        outcome_posts += case.path.endswith("/outcome")

                run()

    stored = {row[0] for row in stack.sql("SELECT id FROM workflows_event")} - events_before
    outcomes = stack.sql("SELECT count(*) FROM workflows_outcome")[0][0] - outcomes_before
    report.sent = sum(statuses.values())
    report.acknowledged = sum(n for s, n in statuses.items() if 200 <= s < 300)
    report.stored = len(stored)
    report.finished = len(stored & accepted)
    if stored - accepted:
        report.lost = 0
        report.problems.append(
            f"{len(stored - accepted)} events stored that no 2xx answer named, "
            f"e.g. {sorted(stored - accepted)[:3]}"
        )
    if accepted - stored - events_before:
        report.lost = len(accepted - stored - events_before)
        report.problems.append(f"{report.lost} events answered 2xx and not stored")
    if outcomes > outcome_posts:
        report.problems.append(f"{outcomes} outcomes stored from {outcome_posts} 2xx outcome posts")
    # Keep the output readable: one line per distinct problem.
    report.problems = sorted(set(report.problems))[:20]
    report.notes.append(f"{len(operations)} operations: {', '.join(operations)}")
    report.notes.append(f"answers: {dict(sorted(statuses.items()))}")
    return report
