"""What-if before go-live: check a draft definition, and run it on a workflow's recent events.

The check is the loader's own parse (bounds, owners, the engine's compile), with nothing saved.
The simulation runs the engine's dry run (payload_dry_run: the real validate, enrich, route and
review steps with writes turned off) of each of the last N events twice, under the current
version and under the draft, and reports what the draft would decide differently. Nothing is
written, no signal sent, no webhook sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from audit.canonical import canonical_hash
from workflows.definitions import DefinitionError, Problem, parse_definition
from workflows.models import Event, Workflow, WorkflowVersion
from workflows.services.definitions import known_owners
from workflows.services.engine import DryRun, payload_dry_run
from workflows.services.engine.route import OwnerDirectory

DEFAULT_LAST = 200
MAX_LAST = 5000
EXAMPLES = 10
ASPECTS = ("validated", "routed", "reviewed")
# A route decision that stops the event: the route step found no owner or its rule failed.
_ROUTE_STOPS = ("no_owner", "rule_error")


@dataclass(frozen=True)
class CheckResult:
    """What loading a file would do, found without saving anything."""

    filename: str
    slug: str
    status: str  # "new", "new_version", "unchanged", "reactivates"
    version: int  # the version number it would be (or is)
    definition: dict[str, Any]

    def describe(self) -> str:
        return {
            "new": f"{self.slug}: valid; loading it creates the workflow, version 1",
            "new_version": f"{self.slug}: valid; loading it makes version {self.version}",
            "unchanged": f"{self.slug}: valid; same content as the current version "
            f"{self.version}, loading it changes nothing",
            "reactivates": f"{self.slug}: valid; same content as version {self.version}, "
            "which loading it makes current again",
        }[self.status]


def definitions_check(*, sources: Sequence[tuple[str, str | bytes]]) -> list[CheckResult]:
    """Parse and compile definition files as load_workflows does, saving nothing.

    DefinitionError lists every problem of every file, exactly as a load would refuse them.
    """
    owners = known_owners()
    problems: list[Problem] = []
    parsed: list[tuple[str, dict[str, Any]]] = []
    for filename, text in sources:
        try:
            parsed.append((filename, parse_definition(text, filename=filename, owners=owners)))
        except DefinitionError as exc:
            problems.extend(exc.problems)
    seen: dict[str, str] = {}
    for filename, definition in parsed:
        slug = definition["slug"]
        if slug in seen:
            problems.append(Problem(filename, 1, f"slug {slug!r} is also defined in {seen[slug]}"))
        seen[slug] = filename
    if problems:
        raise DefinitionError(problems)
    return [_what_loading_does(filename, definition) for filename, definition in parsed]


def _what_loading_does(filename: str, definition: dict[str, Any]) -> CheckResult:
    slug = definition["slug"]
    workflow = Workflow.objects.filter(slug=slug).first()
    if workflow is None:
        return CheckResult(filename, slug, "new", 1, definition)
    same = workflow.versions.filter(content_hash=canonical_hash(definition)).first()
    if same is not None:
        status = "unchanged" if same.pk == workflow.current_version_id else "reactivates"
        return CheckResult(filename, slug, status, same.number, definition)
    last = workflow.versions.order_by("-number").first()
    return CheckResult(filename, slug, "new_version", (last.number if last else 0) + 1, definition)


@dataclass(frozen=True)
class Difference:
    """One event the draft would treat differently, and how."""

    event_id: int
    aspects: tuple[str, ...]  # "validated", "routed", "reviewed"
    before: str
    after: str


@dataclass
class Simulation:
    workflow: Workflow
    current: int  # the version compared against
    draft: int  # the number the draft would get
    compared: int  # events run
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASPECTS, 0))
    differences: list[Difference] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.differences)

    def examples(self, aspect: str) -> list[Difference]:
        return [d for d in self.differences if aspect in d.aspects][:EXAMPLES]


def _summary(run: DryRun) -> str:
    """In a few words what a dry run decided: the stop, or the owner reached."""
    if run.reason_code:
        owner = f" (case for {run.case_owner})" if run.case_owner else ""
        return f"{run.reason_code} at {run.stopped_at}{owner}"
    return f"routed to {run.owner or 'nobody'}"


def _aspects(before: DryRun, after: DryRun) -> tuple[str, ...]:
    found = []
    valid_before = before.reason_code != "validation_failed"
    valid_after = after.reason_code != "validation_failed"
    if valid_before != valid_after:
        found.append("validated")
    elif valid_before:
        stop_before = before.reason_code if before.reason_code in _ROUTE_STOPS else ""
        stop_after = after.reason_code if after.reason_code in _ROUTE_STOPS else ""
        if (before.owner, stop_before) != (after.owner, stop_after):
            found.append("routed")
        if (before.reason_code == "review_required") != (after.reason_code == "review_required"):
            found.append("reviewed")
    return tuple(found)


def draft_simulate(
    *, workflow: Workflow, definition: dict[str, Any], last: int = DEFAULT_LAST
) -> Simulation:
    """The draft's decisions on the workflow's last `last` events beside the current version's.

    `definition` is a checked, normalized definition of this workflow (definitions_check).
    """
    if definition.get("slug") != workflow.slug:
        raise ValueError(f"the draft defines {definition.get('slug')!r}, not {workflow.slug!r}")
    current = workflow.current_version
    if current is None:
        raise ValueError(f"workflow {workflow.slug} has no current version to compare with")
    last = max(1, min(last, MAX_LAST))
    number = (workflow.versions.order_by("-number").values_list("number", flat=True).first()) or 0
    draft = WorkflowVersion(workflow=workflow, number=number + 1, definition=definition)
    events = list(
        Event.objects.filter(workflow=workflow)
        .only("id", "payload")
        .order_by("-received_at", "-id")[:last]
    )
    owners = OwnerDirectory()
    simulation = Simulation(workflow, current.number, draft.number, compared=len(events))
    for event in events:
        before = payload_dry_run(version=current, payload=event.payload, owners=owners)
        after = payload_dry_run(version=draft, payload=event.payload, owners=owners)
        aspects = _aspects(before, after)
        if not aspects:
            continue
        for aspect in aspects:
            simulation.counts[aspect] += 1
        simulation.differences.append(
            Difference(event.pk, aspects, _summary(before), _summary(after))
        )
    return simulation
