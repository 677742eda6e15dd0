"""Retention: old entries are archived with their digest, then removed through the one
sanctioned path; the chain verifies across the cut, the archive on its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone

from audit.chain import GENESIS_HASH
from audit.export_check import export_check
from audit.models import AuditEntry, RetentionFloor
from audit.retention import PruneRefused, audit_prune
from audit.services import audit_seal_pending
from audit.tasks import prune_audit_entries
from tests import factories
from tests.support.superuser import as_owner, triggers_off

pytestmark = pytest.mark.django_db

LONG_AGO = datetime.now(UTC) - timedelta(days=400)


def year_ago() -> datetime:
    return timezone.now() - timedelta(days=365)


@pytest.fixture
def aged(db: None) -> dict[str, list[AuditEntry]]:
    """Six entries from 400 days ago, then three of today; all sealed."""
    with time_machine.travel(LONG_AGO, tick=False):
        old = factories.audit_entries(6, action="old.thing")
    young = factories.audit_entries(3, action="young.thing")
    return {"old": old, "young": young}


def archived_ids(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_a_cut_archives_the_old_entries_with_their_digest_then_removes_them_audited(
    tmp_path: Path, aged
) -> None:
    result = audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None)

    assert (result.rows, result.first_seq, result.floor_seq) == (6, 1, 6)
    assert result.archive == tmp_path / "audit-000000000001-000000000006.jsonl"
    assert archived_ids(result.archive) == [e.pk for e in aged["old"]]
    assert export_check(result.archive).ok
    digest = json.loads(Path(f"{result.archive}.digest").read_text())
    assert (digest["rows"], digest["first_seq"], digest["last_seq"]) == (6, 1, 6)

    remaining = set(AuditEntry.objects.values_list("action", flat=True))
    assert remaining == {"young.thing", "audit.prune"}
    floor = RetentionFloor.objects.get()
    assert (floor.first_seq, floor.floor_seq, floor.rows) == (1, 6, 6)
    assert floor.last_hash == aged["old"][-1].hash
    assert floor.archive_sha256 == digest["sha256"]
    entry = AuditEntry.objects.get(action="audit.prune")
    assert entry.object_id == str(floor.pk)
    assert entry.after["archive"] == result.archive.name
    assert entry.after["rows"] == 6


def test_the_chain_verifies_across_cuts_and_each_archive_on_its_own(
    tmp_path: Path, aged, capsys: pytest.CaptureFixture[str]
) -> None:
    first = audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None, max_rows=4)
    second = audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None, max_rows=4)
    assert (first.rows, second.rows) == (4, 2)
    assert audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None).rows == 0
    audit_seal_pending()

    call_command("audit_verify")
    assert "audit chain OK: 5 sealed entries verified" in capsys.readouterr().out
    start = AuditEntry.objects.filter(seq__isnull=False).order_by("seq").first()
    assert start.seq == 7
    assert start.prev_hash == RetentionFloor.objects.get(floor_seq=6).last_hash

    for archive in (first.archive, second.archive):
        call_command("audit_export", verify=archive)
    assert capsys.readouterr().out.count(".jsonl verifies: ") == 2
    records = [
        json.loads(line)
        for archive in (first.archive, second.archive)
        for line in archive.read_text().splitlines()
    ]
    assert records[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(records, records[1:], strict=False))


def test_a_cut_keeps_the_newest_entry_whatever_its_age(tmp_path: Path) -> None:
    with time_machine.travel(LONG_AGO, tick=False):
        old = factories.audit_entries(5, action="old.thing")
    result = audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None)
    assert result.rows == 4
    assert AuditEntry.objects.filter(seq__isnull=False).get().pk == old[-1].pk


def test_the_head_file_still_verifies_after_a_cut(
    tmp_path: Path, aged, capsys: pytest.CaptureFixture[str]
) -> None:
    head = tmp_path / "head.json"
    call_command("audit_verify", head=head)
    audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None)
    call_command("audit_verify", head=head)
    assert "audit chain OK" in capsys.readouterr().out


def test_a_head_at_the_floor_whose_hash_differs_is_a_rewritten_chain(tmp_path: Path) -> None:
    with time_machine.travel(LONG_AGO, tick=False):
        factories.audit_entries(6, action="old.thing")
    head = tmp_path / "head.json"
    call_command("audit_verify", head=head)  # records seq 6, which the cut will take
    factories.audit_entries(1, action="young.thing")
    audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None)
    call_command("audit_verify", head=head)
    with triggers_off() as cursor:
        cursor.execute("UPDATE audit_retentionfloor SET last_hash = %s", ["f" * 64])
    with pytest.raises(CommandError, match="at the retention floor at seq 6: its MAC does not"):
        call_command("audit_verify", head=head)


def test_a_cut_works_as_the_applications_own_role(tmp_path: Path, aged, app_role: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == app_role
    assert audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None).rows == 6


def refused_as(error: type[Exception], sql: str, params: list[Any] | None = None) -> str:
    with pytest.raises(error) as excinfo, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(excinfo.value)


def cut_call(**changes: Any) -> tuple[str, list[Any]]:
    values = {
        "created_at": timezone.now(),
        "first_seq": 1,
        "floor_seq": 3,
        "last_hash": AuditEntry.objects.get(seq=3).hash,
        "rows": 3,
        "archive": "made-up.jsonl",
        "sha": "0" * 64,
        "mac": "0" * 64,
    } | changes
    return "SELECT audit_retention_cut(%s, %s, %s, %s, %s, %s, %s, %s)", list(values.values())


def test_the_applications_role_can_neither_delete_entries_nor_write_a_floor(
    app_role: str, aged
) -> None:
    assert "permission denied" in refused_as(
        ProgrammingError, "DELETE FROM audit_auditentry WHERE seq = 1"
    )
    assert "permission denied" in refused_as(
        ProgrammingError,
        "INSERT INTO audit_retentionfloor (created_at, first_seq, floor_seq, last_hash, rows, "
        "archive, archive_sha256, mac, txid) VALUES (now(), 1, 1, '', 1, '', '', '', 0)",
    )
    assert AuditEntry.objects.count() == 9


def test_even_the_owner_deletes_only_below_a_floor_that_continues_the_chain(aged) -> None:
    with as_owner():
        assert "append-only: DELETE of entry" in refused_as(
            IntegrityError, "DELETE FROM audit_auditentry WHERE seq = 1"
        )
        with connection.cursor() as cursor:
            cursor.execute(*cut_call(floor_seq=1, rows=1, last_hash=aged["old"][0].hash))
        assert "append-only: DELETE of entry" in refused_as(
            IntegrityError, "DELETE FROM audit_auditentry WHERE seq = 2"
        )
        assert "must name the hash of entry seq 3" in refused_as(
            IntegrityError, *cut_call(first_seq=2, last_hash="f" * 64)
        )
        assert "must continue the last one: first_seq 2 expected" in refused_as(
            IntegrityError, *cut_call(first_seq=1)
        )
        assert "the archive holds 5 entries but 2 were below the floor" in refused_as(
            IntegrityError, *cut_call(first_seq=2, rows=5)
        )
        newest = AuditEntry.objects.order_by("-seq").first()
        assert "leaves the newest sealed entry" in refused_as(
            IntegrityError, *cut_call(first_seq=2, floor_seq=newest.seq, last_hash=newest.hash)
        )
        assert "retention floors are append-only: UPDATE" in refused_as(
            IntegrityError, "UPDATE audit_retentionfloor SET rows = 0"
        )
        assert "retention floors are append-only: DELETE" in refused_as(
            IntegrityError, "DELETE FROM audit_retentionfloor"
        )
    assert AuditEntry.objects.filter(seq__gte=2, seq__lte=9).count() == 8


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_floor_written_by_an_earlier_transaction_lets_no_later_delete_through() -> None:
    entries = factories.audit_entries(4)
    floor = (
        "INSERT INTO audit_retentionfloor (created_at, first_seq, floor_seq, last_hash, rows, "
        "archive, archive_sha256, mac, txid) VALUES (now(), 1, 2, %s, 2, 'x', '', '', 0)"
    )
    with as_owner():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(floor, [entries[1].hash])
        assert "append-only: DELETE of entry" in refused_as(
            IntegrityError, "DELETE FROM audit_auditentry WHERE seq = 1"
        )
    assert AuditEntry.objects.count() == 4


def test_a_gap_in_the_chain_refuses_the_cut_and_removes_nothing(tmp_path: Path, aged) -> None:
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE seq = 3")
    with pytest.raises(PruneRefused, match="does not hold seq 1 to 6 whole"):
        audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None)
    assert AuditEntry.objects.count() == 8
    assert not RetentionFloor.objects.exists()


def test_an_export_pinned_below_the_floor_says_the_entries_were_archived(
    client, auditor, tmp_path: Path, aged
) -> None:
    audit_prune(older_than=year_ago(), archive_dir=tmp_path, actor=None)
    client.force_login(auditor)
    response = client.get("/audit/export.csv?until_seq=3")
    assert response.status_code == 400
    assert "entries up to seq 6 were moved to the archive" in response.content.decode()


def test_audit_prune_needs_a_period_and_is_audited_as_the_command(
    tmp_path: Path, aged, settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.AUDIT_RETENTION_DAYS = None
    with pytest.raises(CommandError, match="no retention period"):
        call_command("audit_prune")
    with pytest.raises(CommandError, match="at least 1"):
        call_command("audit_prune", days=0)
    call_command("audit_prune", days=365, archive_dir=tmp_path, max_rows=5)
    out = capsys.readouterr().out
    assert "archived seq 1 to 5 (5 entries)" in out
    assert "archived seq 6 to 6 (1 entries)" in out
    assert "6 entries older than 365 days archived and removed" in out
    labels = set(AuditEntry.objects.filter(action="audit.prune").values_list("actor_label"))
    assert len(labels) == 1
    assert next(iter(labels))[0].startswith("manage.py audit_prune (")


def test_the_periodic_cut_runs_only_when_retention_is_set(tmp_path: Path, aged, settings) -> None:
    settings.AUDIT_RETENTION_DAYS = None
    assert prune_audit_entries() == 0
    assert AuditEntry.objects.count() == 9
    settings.AUDIT_RETENTION_DAYS = 365
    settings.AUDIT_ARCHIVE_DIR = str(tmp_path / "archive")
    assert prune_audit_entries() == 6
    assert (tmp_path / "archive" / "audit-000000000001-000000000006.jsonl.digest").exists()
