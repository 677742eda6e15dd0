from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from audit.actors import actor_for_token, actor_label
from audit.chain import GENESIS_HASH, entry_hash
from audit.context import current_request_id
from audit.models import AuditEntry
from audit.services import AuditOutsideTransaction, audit_record, audit_seal_pending
from audit.verification import verify_chain
from tests.support.superuser import as_owner, triggers_off

pytestmark = pytest.mark.django_db


def record(n: int = 1, **fields: object) -> list[AuditEntry]:
    with transaction.atomic():
        return [
            audit_record(
                actor=None, action="test.thing", object_type="thing", object_id=i, **fields
            )
            for i in range(n)
        ]


def test_update_of_an_entry_is_refused_by_the_database() -> None:
    (entry,) = record()
    with as_owner(), pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="test.other")
    with (
        as_owner(),
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditentry SET reason = 'edited' WHERE id = %s", [entry.pk])
    entry.refresh_from_db()
    assert (entry.action, entry.reason) == ("test.thing", "")


def test_delete_of_an_entry_is_refused_by_the_database() -> None:
    (entry,) = record()
    with (
        as_owner(),
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [entry.pk])
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_a_sealed_entry_cannot_be_sealed_again() -> None:
    record(2)
    audit_seal_pending()
    first = AuditEntry.objects.get(seq=1)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=first.pk).update(seq=99, hash="f" * 64)


def test_sealing_may_not_change_content_at_the_same_time() -> None:
    (entry,) = record()
    with as_owner(), pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(seq=1, hash="a" * 64, action="forged")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_record_outside_a_transaction_is_refused() -> None:
    with pytest.raises(AuditOutsideTransaction):
        audit_record(actor=None, action="test.thing")
    assert not AuditEntry.objects.exists()


def test_entry_freezes_the_actors_roles_and_the_request_id(make_user) -> None:
    user = make_user("operator", "manager", username="maria")
    token = current_request_id.set("req-12345678")
    try:
        with transaction.atomic():
            entry = audit_record(actor=user, action="case.resolve", target=user, reason="done")
    finally:
        current_request_id.reset(token)
    user.groups.clear()
    entry.refresh_from_db()
    assert entry.actor_id == user.pk
    assert entry.actor_label == "maria"
    assert entry.actor_roles == ["manager", "operator"]
    assert entry.request_id == "req-12345678"
    assert (entry.object_type, entry.object_id) == ("auth.user", str(user.pk))


def test_an_actor_label_names_whoever_acted_as_the_trail_does(make_user) -> None:
    person = make_user("operator", username="maria")
    for actor in (None, person, actor_for_token("crm-ingest")):
        with transaction.atomic():
            entry = audit_record(actor=actor, action="test.thing")
        assert actor_label(actor) == entry.actor_label
    assert [actor_label(a) for a in (None, person)] == ["system", "maria"]


def test_token_actor_is_named_by_the_token() -> None:
    with transaction.atomic():
        entry = audit_record(actor=actor_for_token("crm-ingest"), action="outcome.report")
    assert (entry.actor_kind, entry.actor_label, entry.actor_id) == ("token", "crm-ingest", None)


def test_before_and_after_are_stored_as_they_will_be_hashed() -> None:
    import datetime
    import decimal

    (entry,) = record(
        before={"amount": decimal.Decimal("12.50")},
        after={"at": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)},
    )
    entry.refresh_from_db()
    assert entry.before == {"amount": "12.50"}
    assert entry.after == {"at": "2026-01-02T03:04:05Z"}


def test_sealing_chains_every_entry_in_order() -> None:
    entries = record(5)
    assert audit_seal_pending() == 5
    sealed = list(AuditEntry.objects.order_by("seq"))
    assert [e.seq for e in sealed] == [1, 2, 3, 4, 5]
    assert [e.pk for e in sealed] == [e.pk for e in entries]
    assert sealed[0].prev_hash == GENESIS_HASH
    for before, after in zip(sealed, sealed[1:], strict=False):
        assert after.prev_hash == before.hash
        assert after.hash == entry_hash(before.hash, after)
    assert verify_chain().ok


def test_audit_verify_names_an_entry_altered_behind_the_triggers_back(capsys) -> None:
    entries = record(4)
    audit_seal_pending()
    call_command("audit_verify")
    assert "4 sealed entries verified" in capsys.readouterr().out

    victim = entries[2]
    # A superuser can switch triggers off for a session; the chain still tells.
    with triggers_off() as cursor:
        cursor.execute(
            "UPDATE audit_auditentry SET reason = 'quietly edited' WHERE id = %s", [victim.pk]
        )

    with pytest.raises(CommandError) as excinfo:
        call_command("audit_verify")
    message = str(excinfo.value)
    assert f"entry #{victim.pk} (seq 3)" in message
    assert "altered" in message
    assert "2 entries before it verified" in message


def test_audit_verify_names_the_entry_after_a_deleted_one() -> None:
    entries = record(3)
    audit_seal_pending()
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [entries[1].pk])
    report = verify_chain()
    assert report.broken_entry_id == entries[2].pk
    assert "sequence gap" in report.problem


@pytest.mark.parametrize("altered", [1, 6, 7, 11])
def test_the_walk_finds_an_altered_entry_in_any_chunk_read_ahead(altered: int) -> None:
    """The next chunk is read while this one is checked: a break at either end of a chunk, or
    in the last, is found all the same, and the walk stops there."""
    entries = record(11)
    audit_seal_pending()
    assert verify_chain(chunk_size=3).checked == 11
    with triggers_off() as cursor:
        cursor.execute(
            "UPDATE audit_auditentry SET reason = 'edited' WHERE id = %s", [entries[altered - 1].pk]
        )
    report = verify_chain(chunk_size=3)
    assert (report.broken_seq, report.checked) == (altered, altered - 1)
    assert "altered" in report.problem


def test_verify_reports_entries_still_waiting_for_their_seal() -> None:
    record(2)
    audit_seal_pending()
    record(3)
    report = verify_chain()
    assert report.ok
    assert (report.checked, report.unsealed) == (2, 3)
