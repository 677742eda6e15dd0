"""Nobody shortens the trail quietly: TRUNCATE, the application's role, the head kept outside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, ProgrammingError, connection, transaction

from audit.chain import entry_hash
from audit.models import AuditEntry, ChainCheck
from audit.services import audit_chain_check, audit_record, audit_seal_pending
from audit.tasks import verify_audit_chain
from tests.support.superuser import as_owner, triggers_off

pytestmark = pytest.mark.django_db


def record(n: int) -> list[AuditEntry]:
    with transaction.atomic():
        return [
            audit_record(actor=None, action="test.thing", object_type="thing", object_id=i)
            for i in range(n)
        ]


def sealed(n: int) -> list[AuditEntry]:
    entries = record(n)
    audit_seal_pending()
    return [AuditEntry.objects.get(pk=entry.pk) for entry in entries]


@pytest.mark.parametrize(
    "table",
    [
        "audit_auditentry",
        "workflows_decision",
        "workflows_attempt",
        "workflows_outcome",
        "workflows_event",
        "workflows_workflowversion",
    ],
)
def test_truncate_is_refused_even_to_the_tables_owner(table: str) -> None:
    sealed(2)
    with (
        as_owner(),
        pytest.raises(IntegrityError, match=f"{table} is append-only: TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # The entries' deferred foreign-key checks must not be what stops the statement.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {table} CASCADE")
    assert AuditEntry.objects.count() == 2


# --- the application's own role -----------------------------------------------------------------


def refused(sql: str, params: list[object] | None = None) -> str:
    with (
        pytest.raises(ProgrammingError) as excinfo,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
    return str(excinfo.value)


def test_the_apps_role_writes_and_seals_but_cannot_rewrite_delete_truncate_or_disable(
    app_role: str,
) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == app_role
    entries = sealed(3)  # inserted and sealed by the role itself
    assert [e.seq for e in entries] == [1, 2, 3]
    victim = entries[1].pk

    assert "permission denied" in refused(
        "UPDATE audit_auditentry SET reason = 'edited' WHERE id = %s", [victim]
    )
    assert "permission denied" in refused("DELETE FROM audit_auditentry WHERE id = %s", [victim])
    assert "permission denied" in refused("TRUNCATE audit_auditentry CASCADE")
    assert "must be owner" in refused("ALTER TABLE audit_auditentry DISABLE TRIGGER ALL")
    assert "must be owner" in refused("DROP TRIGGER audit_entry_append_only ON audit_auditentry")
    assert "permission denied" in refused("SET session_replication_role = replica")
    for table in ("workflows_decision", "workflows_attempt", "workflows_outcome"):
        assert "permission denied" in refused(f"UPDATE {table} SET id = id")
        assert "permission denied" in refused(f"DELETE FROM {table}")
    assert "permission denied" in refused("DELETE FROM workflows_event")
    assert AuditEntry.objects.count() == 3


# --- the chain head kept outside the table ------------------------------------------------------


def test_deleting_the_newest_ten_entries_is_detected_by_the_head_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = tmp_path / "head.json"
    entries = sealed(30)
    call_command("audit_verify", head=head)
    assert json.loads(head.read_text())["seq"] == 30

    newest = [e.pk for e in entries[-10:]]
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE id = ANY(%s)", [newest])

    call_command("audit_verify")  # what is left still chains: the table alone cannot tell
    assert "20 sealed entries verified" in capsys.readouterr().out
    with pytest.raises(CommandError) as excinfo:
        call_command("audit_verify", head=head)
    message = str(excinfo.value)
    assert "BROKEN" in message
    assert "recorded head is seq 30 but the table ends at seq 20" in message
    assert "deleted" in message
    assert json.loads(head.read_text())["seq"] == 30  # the evidence is kept


def test_a_chain_rewritten_with_fresh_hashes_is_detected_by_the_head_file(
    tmp_path: Path,
) -> None:
    head = tmp_path / "head.json"
    entries = sealed(12)
    call_command("audit_verify", head=head)

    # Edit entry 5 and recompute every hash after it: the table verifies again on its own.
    with triggers_off() as cursor:
        cursor.execute(
            "UPDATE audit_auditentry SET reason = 'rewritten' WHERE id = %s", [entries[4].pk]
        )
        prev = entries[3].hash
        for entry in entries[4:]:
            fresh = AuditEntry.objects.get(pk=entry.pk)
            new_hash = entry_hash(prev, fresh)
            cursor.execute(
                "UPDATE audit_auditentry SET prev_hash = %s, hash = %s WHERE id = %s",
                [prev, new_hash, entry.pk],
            )
            prev = new_hash
    call_command("audit_verify")
    with pytest.raises(CommandError, match="seq 12 has hash .* the chain was rewritten"):
        call_command("audit_verify", head=head)


def test_a_head_file_edited_by_hand_is_refused(tmp_path: Path) -> None:
    head = tmp_path / "head.json"
    sealed(5)
    call_command("audit_verify", head=head)
    document = json.loads(head.read_text())
    document["seq"] = 3
    head.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="MAC does not match"):
        call_command("audit_verify", head=head)


def test_the_sealer_moves_the_head_on_but_never_onto_a_shortened_chain(
    tmp_path: Path, settings, django_capture_on_commit_callbacks, caplog
) -> None:
    settings.AUDIT_HEAD_FILE = str(tmp_path / "head.json")
    with django_capture_on_commit_callbacks(execute=True):
        entries = sealed(15)
    assert json.loads(Path(settings.AUDIT_HEAD_FILE).read_text())["seq"] == 15

    with triggers_off() as cursor:
        cursor.execute(
            "DELETE FROM audit_auditentry WHERE id = ANY(%s)", [[e.pk for e in entries[-5:]]]
        )
    with django_capture_on_commit_callbacks(execute=True):
        sealed(8)  # sealed on as seq 11..18, on top of the shortened chain
    kept = json.loads(Path(settings.AUDIT_HEAD_FILE).read_text())
    assert (kept["seq"], kept["hash"]) == (15, entries[-1].hash)
    assert "head not moved on" in caplog.text


def test_the_periodic_check_records_a_break_and_the_overview_and_readyz_raise_the_alarm(
    tmp_path: Path, settings, client, auditor
) -> None:
    settings.AUDIT_HEAD_FILE = str(tmp_path / "head.json")
    entries = sealed(6)
    assert verify_audit_chain() is True
    call_command("audit_verify", head=Path(settings.AUDIT_HEAD_FILE))
    client.force_login(auditor)
    assert 'data-testid="alarm-audit-chain"' not in client.get("/").content.decode()
    assert "audit_chain" not in client.get("/readyz").json()["warnings"]

    with triggers_off() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [entries[-1].pk])
    assert verify_audit_chain() is False
    check = ChainCheck.objects.order_by("-id").first()
    assert "recorded head is seq 6 but the table ends at seq 5" in check.problem

    page = client.get("/").content.decode()
    assert 'data-testid="alarm-audit-chain"' in page
    assert "recorded head is seq 6" in page
    ready = client.get("/readyz")
    assert ready.status_code == 200  # this process can serve; a person must look at the chain
    body = ready.json()
    assert "audit_chain" in body["warnings"]
    assert body["audit_chain"].startswith("BROKEN")


def test_an_altered_entry_in_the_middle_is_named_by_the_periodic_check() -> None:
    entries = sealed(4)
    with triggers_off() as cursor:
        cursor.execute(
            "UPDATE audit_auditentry SET reason = 'quietly' WHERE id = %s", [entries[1].pk]
        )
    check = audit_chain_check()
    assert not check.ok
    assert check.broken_seq == 2
    assert f"entry #{entries[1].pk} (seq 2)" in check.problem
