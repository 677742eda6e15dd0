"""The operators' actions on a case: one registry that every surface reads.

An entry names the action and says which form cleans a person's choices, which service does
it, how those choices are stored on a bulk job (and read back), what the person is told, who
may do it, whether it applies to many cases at once, and its key in the queue. The case page
renders one partial per entry (templates/exceptions/actions/<name>.html); the single-action
view, the bulk bar and its jobs, and the queue's keys and their help all look actions up here.
Adding an action is an entry here and its partial.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.utils.datastructures import MultiValueDict

from exceptions import services
from exceptions.approvals.services import approval_for_case_action
from exceptions.event_forms import RecordOutcomeForm, outcome_params
from exceptions.forms import (
    ActionForm,
    AssignForm,
    DismissForm,
    ReclassifyForm,
    ReplayEditForm,
    ReplayForm,
    ResolveForm,
    SnoozeForm,
    note_field,
    person_value,
    snooze_until,
)
from exceptions.models import BulkJob, CaseState, ExceptionCase
from exceptions.reasons import case_reclassify
from workflows.four_eyes import ApprovalRequired
from workflows.models import Event, Team

TRIAGE = "exceptions.triage_exceptioncase"
Params = dict[str, Any]


def _no_params(data: dict[str, Any], actor: Any) -> Params:
    return {}


def _any_open_case(case: ExceptionCase) -> bool:
    return True


def _no_initial(case: ExceptionCase) -> dict[str, Any]:
    return {}


def _anyone(case: ExceptionCase, user: Any) -> bool:
    return True


REASSIGN_ANY = "exceptions.reassign_exceptioncase"


def may_reassign(case: ExceptionCase, user: Any) -> bool:
    """Managers and admins reassign any case; others only a case that is theirs or nobody's
    in person: never one another person owns (DESIGN.md section 2)."""
    return case.owner_user_id in (None, user.pk) or user.has_perm(REASSIGN_ANY)


@dataclass(frozen=True)
class CaseAction:
    name: str  # in the action's URL and partial, and stored as BulkJob.action
    label: str
    form: type[ActionForm]
    # (*, case, actor, version, note, params) -> the new event of a replay, or None.
    run: Callable[..., Event | None]
    done: str  # what the person is told: {pk} is the case, {event} the replay's new event
    # The form's cleaned data, and who acts, as JSON a bulk job stores and `run` reads back.
    params: Callable[[dict[str, Any], Any], Params] = _no_params
    permission: str = TRIAGE
    bulk: bool = False
    key: str = ""  # its key in the queue, on the focused row (or group)
    key_help: str = ""
    applies: Callable[[ExceptionCase], bool] = _any_open_case  # offered on an open case
    initial: Callable[[ExceptionCase], dict[str, Any]] = _no_initial
    form_prefix: str = ""  # of its fields' ids on the case page, if not its name
    # Whether this person may take it on this case (beyond the permission): refused with 403.
    allowed: Callable[[ExceptionCase, Any], bool] = _anyone
    # The same on many cases at once, by sets, for a bulk job's chunk (*, cases, actor, note,
    # params) -> each case's id to its replay's event (or None), or to why it was not done.
    run_many: Callable[..., Mapping[int, Event | Exception | None]] | None = None

    @property
    def template(self) -> str:
        return f"exceptions/actions/{self.name}.html"

    @property
    def auto_id(self) -> str:
        return f"{self.form_prefix or self.name}-id_%s"

    @property
    def arguments(self) -> list[str]:
        """The fields a person fills in, beyond the version shown and the note."""
        return [name for name in self.form.base_fields if name not in ("version", "note")]

    @property
    def quick(self) -> bool:
        """Nothing to choose: one button."""
        return not self.arguments


# --- what each action does ----------------------------------------------------------------------


def _claim(*, case: ExceptionCase, actor: Any, version: int, note: str, params: Params) -> None:
    services.case_claim(case=case, actor=actor, version=version, note=note)


def _acknowledge(
    *, case: ExceptionCase, actor: Any, version: int, note: str, params: Params
) -> None:
    services.case_acknowledge(case=case, actor=actor, version=version, note=note)


def _retry(*, case: ExceptionCase, actor: Any, version: int, note: str, params: Params) -> None:
    services.case_retry(case=case, actor=actor, version=version, note=note)


def _assign_params(data: dict[str, Any], actor: Any) -> Params:
    params: Params = {}
    if data.get("team"):
        params["team"] = data["team"].slug
    if data.get("person"):
        person = person_value(data["person"], me=actor)
        params["user"] = person.get_username() if person else None
    return params


def _assign(*, case: ExceptionCase, actor: Any, version: int, note: str, params: Params) -> None:
    # A key left out keeps that side of the owner; a key set to None clears it.
    owner: dict[str, Any] = {}
    if "team" in params:
        owner["team"] = Team.objects.get(slug=params["team"]) if params["team"] else None
    if "user" in params:
        users = get_user_model().objects
        owner["user"] = users.get(username=params["user"]) if params["user"] else None
    services.case_assign(case=case, actor=actor, version=version, note=note, **owner)


def _snooze(*, case: ExceptionCase, actor: Any, version: int, note: str, params: Params) -> None:
    until = datetime.fromisoformat(params["until"])
    services.case_snooze(case=case, actor=actor, until=until, version=version, note=note)


def _resolve(*, case: ExceptionCase, actor: Any, version: int, note: str, params: Params) -> None:
    resolution = params["resolution"]
    services.case_resolve(case=case, actor=actor, resolution=resolution, version=version, note=note)


def _dismiss(*, case: ExceptionCase, actor: Any, version: int, note: str, params: Params) -> None:
    services.case_dismiss(
        case=case, actor=actor, reason=params["reason"], version=version, note=note
    )


def _replay(*, case: ExceptionCase, actor: Any, version: int, note: str, params: Params) -> Event:
    # Jobs stored before the version was a choice replayed under the original.
    run_version = params.get("version", "original")
    _, replay = services.case_replay(
        case=case, actor=actor, run_version=run_version, version=version, note=note
    )
    return replay


def _replay_many(
    *, cases: list[ExceptionCase], actor: Any, note: str, params: Params
) -> Mapping[int, Event | Exception | None]:
    run_version = params.get("version", "original")
    return services.cases_replay(cases=cases, actor=actor, run_version=run_version, note=note)


def _replay_edit(
    *, case: ExceptionCase, actor: Any, version: int, note: str, params: Params
) -> Event:
    _, replay = services.case_replay(
        case=case,
        actor=actor,
        run_version=params.get("version", "current"),
        payload=params["payload"],
        version=version,
        note=note,
    )
    return replay


def _reclassify(
    *, case: ExceptionCase, actor: Any, version: int, note: str, params: Params
) -> None:
    case_reclassify(case=case, actor=actor, code=params["code"], note=note, version=version)


def _record_outcome(
    *, case: ExceptionCase, actor: Any, version: int, note: str, params: Params
) -> None:
    services.case_record_outcome(case=case, actor=actor, version=version, note=note, **params)


def _chosen(*names: str) -> Callable[[dict[str, Any], Any], Params]:
    """Params that are the chosen values themselves."""
    return lambda data, actor: {name: data[name] for name in names}


ACTIONS: dict[str, CaseAction] = {
    action.name: action
    for action in [
        CaseAction(
            "claim", "Claim", ActionForm, _claim, "Case {pk} is yours.",
            bulk=True, key="a", key_help="Assign to me", allowed=may_reassign,
        ),
        CaseAction(
            "acknowledge", "Acknowledge", ActionForm, _acknowledge, "Case {pk} acknowledged.",
            bulk=True, key="e", key_help="Acknowledge",
            applies=lambda case: case.state != CaseState.ACKNOWLEDGED,
        ),
        CaseAction(
            "retry", "Retry", ActionForm, _retry, "Case {pk}: the failed step will run again.",
            bulk=True,
        ),
        CaseAction(
            "resolve", "Resolve", ResolveForm, _resolve, "Case {pk} resolved.",
            params=_chosen("resolution"), bulk=True,
            key="r", key_help="Resolve (choose a resolution)",
        ),
        CaseAction(
            "assign", "Assign", AssignForm, _assign, "Case {pk} assigned.",
            params=_assign_params, bulk=True, allowed=may_reassign,
        ),
        CaseAction(
            "snooze", "Snooze", SnoozeForm, _snooze, "Case {pk} snoozed.",
            params=lambda data, actor: {"until": snooze_until(data["duration"]).isoformat()},
            bulk=True,
        ),
        CaseAction(
            "replay", "Replay", ReplayForm, _replay, "Case {pk} replayed as event {event}.",
            params=lambda data, actor: {"version": data["run_version"]}, bulk=True,
            run_many=_replay_many,
        ),
        CaseAction(
            "replay_edit", "Replay with an edited payload", ReplayEditForm, _replay_edit,
            "Case {pk} replayed with the edited payload as event {event}.",
            params=lambda data, actor: {"payload": data["payload"], "version": "current"},
            form_prefix="edit",
            initial=lambda case: {
                "payload": json.dumps(case.event.payload, indent=2, ensure_ascii=False)
            },
        ),
        CaseAction(
            "dismiss", "Dismiss", DismissForm, _dismiss, "Case {pk} dismissed.",
            params=_chosen("reason"), bulk=True,
        ),
        CaseAction(
            "reclassify", "Re-classify", ReclassifyForm, _reclassify,
            "Case {pk} re-classified.",
            params=lambda data, actor: {"code": data["code"].code},
        ),
        CaseAction(
            "record_outcome", "Record the outcome (handled by hand)", RecordOutcomeForm,
            _record_outcome, "Case {pk} resolved: the outcome you recorded closes its event.",
            params=outcome_params, form_prefix="outcome",
        ),
    ]
}  # fmt: skip


def bulk_actions() -> list[CaseAction]:
    return [action for action in ACTIONS.values() if action.bulk]


def bulk_action(name: str) -> CaseAction:
    action = ACTIONS.get(name)
    if action is None or not action.bulk:
        raise services.CaseActionRefused(f"{name!r} is not a bulk action.")
    return action


def perform(action: CaseAction, *, case: ExceptionCase, actor: Any, form: ActionForm) -> str:
    """Do the action a valid form asks for; the words that say it is done.

    An action that needs a second person's approval (an edited replay, a replay of an event
    already delivered) does not run: it becomes an approval request, and the words say so.
    """
    data = form.cleaned_data
    params = action.params(data, actor)
    try:
        replay = action.run(
            case=case, actor=actor, version=data["version"], note=data["note"], params=params
        )
    except ApprovalRequired as required:
        approval = approval_for_case_action(
            required=required,
            case=case,
            actor=actor,
            action=action.name,
            params=params,
            note=data["note"],
        )
        return (
            f"{required} Approval request #{approval.pk} now waits for a "
            f"{approval.required_role}; the case stays open until then."
        )
    return action.done.format(pk=case.pk, event=replay.pk if replay is not None else "")


def bulk_apply(*, case: ExceptionCase, job: BulkJob) -> None:
    """One case of a bulk job, at the version it has now: the job was asked for all of them."""
    action = bulk_action(job.action)
    if not action.allowed(case, job.created_by):
        raise _not_allowed(case)
    action.run(
        case=case, actor=job.created_by, version=case.version, note=job.note, params=job.params
    )


def bulk_apply_many(
    *, cases: list[ExceptionCase], job: BulkJob
) -> dict[int, Exception | None] | None:
    """A chunk of a bulk job's cases at once, for an action with a set-based form (None for
    one without: bulk_apply then takes them one by one): each case's id to None if it was
    done, or to why it was not."""
    action = bulk_action(job.action)
    if action.run_many is None:
        return None
    results: dict[int, Exception | None] = {}
    allowed = []
    for case in cases:
        if action.allowed(case, job.created_by):
            allowed.append(case)
        else:
            results[case.pk] = _not_allowed(case)
    done = action.run_many(cases=allowed, actor=job.created_by, note=job.note, params=job.params)
    results.update({pk: r if isinstance(r, Exception) else None for pk, r in done.items()})
    return results


def _not_allowed(case: ExceptionCase) -> services.CaseActionRefused:
    return services.CaseActionRefused(
        f"Case {case.pk} belongs to {case.owner_user}: only a manager or an admin moves it."
    )


# --- what a page offers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """An action with the form a page shows for it."""

    action: CaseAction
    form: forms.Form

    @property
    def arguments(self) -> list[forms.BoundField]:
        return [self.form[name] for name in self.action.arguments]


def offers_on_case(
    case: ExceptionCase, user: Any, *, bound: tuple[str, forms.Form] | None = None
) -> list[Offer]:
    """The actions this person may take on the case now, each with its form."""
    if not case.is_open:
        return []
    offers = []
    for action in ACTIONS.values():
        if not (
            user.has_perm(action.permission) and action.applies(case) and action.allowed(case, user)
        ):
            continue
        if bound is not None and bound[0] == action.name:
            form = bound[1]
        else:
            initial = {"version": case.version, **action.initial(case)}
            form = action.form(initial=initial, auto_id=action.auto_id)
        offers.append(Offer(action, form))
    return offers


def offers_by_key(user: Any) -> list[Offer]:
    """The actions this person may take from the queue's keyboard, each with its dialog's form."""
    return [
        Offer(action, action.form(auto_id=f"key-{action.name}-id_%s"))
        for action in ACTIONS.values()
        if action.key and user.has_perm(action.permission)
    ]


def offers_in_bulk(user: Any) -> list[Offer]:
    """The bulk actions this person may take, each with its fields as the bulk bar shows them."""
    offers = []
    for action in bulk_actions():
        if not user.has_perm(action.permission):
            continue
        # Hidden until chosen, so never required by the browser; and the bar is one row of
        # selects, so a choice of radio buttons shows as a select there.
        form = action.form(auto_id="bulk-id_%s", use_required_attribute=False)
        for name in action.arguments:
            field = form.fields[name]
            if isinstance(field.widget, forms.RadioSelect):
                field.widget = forms.Select(choices=field.widget.choices)
        offers.append(Offer(action, form))
    return offers


class BulkForm(forms.Form):
    """One action over the selected cases and groups, or over everything the filter matches.

    The action's own form cleans what was chosen for it, exactly as on the case page.
    """

    action = forms.ChoiceField(label="Action")
    scope = forms.ChoiceField(
        label="Apply to",
        choices=[("selected", "Selected rows"), ("matching", "Everything matching the filter")],
        initial="selected",
        widget=forms.RadioSelect,
    )
    case = forms.TypedMultipleChoiceField(coerce=int, required=False)
    group = forms.MultipleChoiceField(required=False)
    query = forms.CharField(required=False, widget=forms.HiddenInput)
    note = note_field()

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        allowed = [a for a in bulk_actions() if user.has_perm(a.permission)]
        # action, case and group are declared above as choice fields; their choices vary.
        choice_fields = cast(dict[str, forms.ChoiceField], self.fields)
        choice_fields["action"].choices = [
            ("", "Choose…"),
            *((a.name, a.label) for a in allowed),
        ]
        # Any id or fingerprint may be posted; what they may touch is decided by the query.
        posted = cast("MultiValueDict[str, str]", self.data)  # a QueryDict, or empty unbound
        choice_fields["case"].choices = [(v, v) for v in posted.getlist("case")]
        choice_fields["group"].choices = [(v, v) for v in posted.getlist("group")]
        self.arguments: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("scope") == "selected" and not data.get("case") and not data.get("group"):
            self.add_error(None, "Select at least one row, or apply to everything.")
        action = ACTIONS.get(data.get("action", ""))
        if action is not None:
            chosen = cast("MultiValueDict[str, str]", self.data).copy()
            chosen["version"] = "1"  # each case is taken at its own version when the job runs
            own = action.form(chosen)
            if own.is_valid():
                self.arguments = own.cleaned_data
            for name, errors in own.errors.items():
                if name != "note":  # this form's own note field says it already
                    self.add_error(None, errors)
        return data

    def params(self, *, me: Any) -> Params:
        """The action's arguments as the job stores them."""
        return ACTIONS[self.cleaned_data["action"]].params(self.arguments, me)
