"""Admins add their own reason codes; operators re-classify a case to any active code."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from exceptions.models import ExceptionCase, ReasonCode
from exceptions.reasons import case_reclassify, reason_code_create
from exceptions.services import CaseActionRefused, CaseConflict
from tests import factories

pytestmark = pytest.mark.django_db


def test_an_admin_adds_a_code_that_operators_can_use_at_once(signed_in, flow) -> None:
    admin = signed_in("admin")
    admin.post(
        "/owners/reason-codes/new/",
        {"code": "duplicate_customer", "label": "Duplicate customer", "acknowledge_within": "1h",
         "resolve_within": "1d", "note_required": "on"},
    )  # fmt: skip
    code = ReasonCode.objects.get(code="duplicate_customer")
    assert (code.builtin, code.active, code.note_required) == (False, True, True)
    assert code.default_acknowledge_within.total_seconds() == 3600
    assert (
        AuditEntry.objects.get(action="reason_code.create").after["label"] == "Duplicate customer"
    )

    case = factories.case(flow=flow)
    operator = signed_in("operator")
    page = operator.get(f"/exceptions/{case.pk}/").content.decode()
    assert f"/exceptions/{case.pk}/reclassify/" in page and "Duplicate customer" in page
    response = operator.post(
        f"/exceptions/{case.pk}/reclassify/",
        {"version": case.version, "code": "duplicate_customer", "note": "same as case 12"},
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.reason_id == "duplicate_customer"
    entry = AuditEntry.objects.get(action="case.reclassify")
    assert (entry.before["reason"], entry.after["reason"], entry.reason) == (
        "validation_failed", "duplicate_customer", "same as case 12",
    )  # fmt: skip


def test_re_classifying_needs_a_note_an_active_code_and_the_version_shown(flow, roles) -> None:
    operator = roles["operator"]
    case = factories.case(flow=flow)
    with pytest.raises(CaseActionRefused, match="a note is required"):
        case_reclassify(case=case, actor=operator, code="rule_error", note=" ")
    retired = reason_code_create(code="old_code", label="Old", actor=roles["admin"])
    ReasonCode.objects.filter(pk=retired.pk).update(active=False)
    with pytest.raises(CaseActionRefused, match="not an active reason code"):
        case_reclassify(case=case, actor=operator, code="old_code", note="n")
    with pytest.raises(CaseConflict):
        case_reclassify(case=case, actor=operator, code="rule_error", note="n", version=99)
    moved = case_reclassify(case=case, actor=operator, code="rule_error", note="n")
    assert moved.fingerprint != case.fingerprint
    assert ExceptionCase.objects.get(pk=case.pk).reason_id == "rule_error"


def test_a_case_cannot_take_a_code_its_event_already_has_open(flow, roles) -> None:
    case = factories.case(flow=flow)
    factories.case(flow=flow)  # another event: no clash
    other = ExceptionCase.objects.create(
        event=case.event, workflow=flow, reason_id="rule_error", step="route", detail="x",
        fingerprint="f",
    )  # fmt: skip
    with pytest.raises(CaseActionRefused, match="already has an open rule_error case"):
        case_reclassify(case=case, actor=roles["operator"], code="rule_error", note="n")
    assert other.reason_id == "rule_error"


def test_retiring_a_code_keeps_its_cases_and_built_in_codes_stay(signed_in, flow) -> None:
    admin = signed_in("admin")
    admin.post("/owners/reason-codes/new/", {"code": "temp", "label": "Temp"})
    admin.post("/owners/reason-codes/temp/retire/", {})
    assert not ReasonCode.objects.get(code="temp").active
    admin.post("/owners/reason-codes/no_owner/retire/", {})
    assert ReasonCode.objects.get(code="no_owner").active
    page = signed_in("auditor").get("/owners/reason-codes/").content.decode()
    assert "retired" in page and "Add the code" not in page


def test_only_admins_add_or_retire_codes(signed_in) -> None:
    for role in ("operator", "manager", "auditor"):
        client = signed_in(role)
        assert (
            client.post("/owners/reason-codes/new/", {"code": "x", "label": "X"}).status_code == 403
        )
        assert client.post("/owners/reason-codes/no_owner/retire/").status_code == 403
    assert not ReasonCode.objects.filter(code="x").exists()
