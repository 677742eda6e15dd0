"""What-if on the workflow page: an admin runs a draft definition on the last events (the
engine's dry run, nothing saved) and sees what it would decide differently."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from console.catalogue.forms import SIMULATE, SimulateForm
from console.catalogue.selectors import workflow_for
from console.catalogue.views import page_context
from workflows.definitions import DefinitionError
from workflows.models import Workflow
from workflows.simulation import definitions_check, draft_simulate


def _simulate(workflow: Workflow, form: SimulateForm) -> tuple[dict[str, Any], int]:
    """(what the results part shows, the status): the simulation, or why there is none."""
    if not form.is_valid():
        return {}, 422
    try:
        (checked,) = definitions_check(sources=[("draft.yaml", form.cleaned_data["draft"])])
    except DefinitionError as exc:
        return {"problems": [str(p) for p in exc.problems]}, 422
    if checked.slug != workflow.slug:
        return {"problems": [f"The draft defines {checked.slug!r}, not {workflow.slug!r}."]}, 422
    simulation = draft_simulate(
        workflow=workflow, definition=checked.definition, last=form.cleaned_data["last"]
    )
    return {"check": checked, "simulation": simulation}, 200


@require_POST
@login_required
@permission_required(SIMULATE, raise_exception=True)
def workflow_simulate(request: HttpRequest, slug: str) -> HttpResponse:
    workflow = workflow_for(slug)
    form = SimulateForm(request.POST, auto_id="sim-%s")
    results, status = _simulate(workflow, form)
    if getattr(request, "htmx", False):
        context = {"workflow": workflow, "simulate_form": form, **results}
        return render(request, "console/_simulation.html", context, status=status)
    context = {**page_context(request, workflow), "simulate_form": form, **results}
    return render(request, "console/workflow.html", context, status=status)
