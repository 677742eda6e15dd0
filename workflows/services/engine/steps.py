"""The steps in their order, run from wherever an event stands."""

from __future__ import annotations

from collections.abc import Callable

from workflows.models import Step
from workflows.services.engine.delivery import deliver_step
from workflows.services.engine.outcomes import outcome_step
from workflows.services.engine.review import review_step
from workflows.services.engine.route import OwnerDirectory, route_step
from workflows.services.engine.run import Run
from workflows.services.engine.validate import enrich_step, validate_step

STEP_ORDER = [Step.VALIDATE, Step.ENRICH, Step.ROUTE, Step.REVIEW, Step.DELIVER, Step.OUTCOME]


def steps_run(run: Run, owners: OwnerDirectory, *, through: Step = Step.OUTCOME) -> None:
    """Run the event's steps from its current one until one stops it, or `through` has run.

    Each step returns whether the event goes on; a step that stops it has recorded why.
    """
    event = run.event
    handlers: dict[Step, Callable[[Run], bool]] = {
        Step.VALIDATE: validate_step,
        Step.ENRICH: enrich_step,
        Step.ROUTE: lambda r: route_step(r, owners),
        Step.REVIEW: review_step,
        Step.DELIVER: deliver_step,
        Step.OUTCOME: outcome_step,
    }
    start = STEP_ORDER.index(Step(event.step)) if event.step in Step.values else 0
    if STEP_ORDER[start] == Step.OUTCOME and run.compiled.action.type == "webhook":
        # An outcome comes from running the action: there is no outcome step without it.
        start = STEP_ORDER.index(Step.DELIVER)
    for step in STEP_ORDER[start : STEP_ORDER.index(through) + 1]:
        event.step = step
        if not handlers[step](run):
            return
