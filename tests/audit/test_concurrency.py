"""The chain under concurrent writers: real transactions on real PostgreSQL, one per thread."""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection, transaction

from audit.models import AuditEntry
from audit.services import SEAL_LOCK_KEY, audit_record, audit_seal, audit_seal_pending
from audit.verification import verify_chain
from tests.support.waits import in_thread

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_eight_concurrent_writers_and_a_running_sealer_make_one_unbroken_chain() -> None:
    writers, transactions_each = 8, 30
    errors: list[BaseException] = []
    done = threading.Event()

    def write(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for n in range(transactions_each):
                with transaction.atomic():
                    for k in range(rng.randint(1, 3)):
                        audit_record(
                            actor=None,
                            action="test.write",
                            object_type="writer",
                            object_id=f"{worker}-{n}-{k}",
                        )
                        # Hold the transaction open a little so commits land out of id order.
                        time.sleep(rng.random() * 0.004)
        except BaseException as exc:
            errors.append(exc)

    def seal_while_writing() -> None:
        try:
            while not done.is_set():
                audit_seal(batch_size=25)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=in_thread(lambda w=w: write(w))) for w in range(writers)]
    sealer = threading.Thread(target=in_thread(seal_while_writing))
    sealer.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sealer.join()
    assert errors == []

    audit_seal_pending()
    total = AuditEntry.objects.count()
    assert total >= writers * transactions_each
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1)), "every entry sealed exactly once, no gaps"
    prev_hashes = AuditEntry.objects.values_list("prev_hash", flat=True)
    assert len(set(prev_hashes)) == total, "no two entries chained onto the same predecessor"
    object_ids = list(AuditEntry.objects.values_list("object_id", flat=True))
    assert len(object_ids) == len(set(object_ids)) == total
    report = verify_chain()
    assert report.ok, report.problem
    assert (report.checked, report.unsealed) == (total, 0)


def test_an_entry_that_commits_late_with_a_low_id_is_sealed_not_skipped() -> None:
    inserted, release = threading.Event(), threading.Event()
    late: dict[str, int] = {}

    def slow_writer() -> None:
        with transaction.atomic():
            late["id"] = audit_record(actor=None, action="test.late").pk
            inserted.set()
            release.wait(10)

    thread = threading.Thread(target=in_thread(slow_writer))
    thread.start()
    assert inserted.wait(10)
    with transaction.atomic():
        early_id = audit_record(actor=None, action="test.early").pk
    assert late["id"] < early_id

    assert audit_seal_pending() == 1  # the open transaction's entry is not visible yet
    release.set()
    thread.join()
    assert audit_seal_pending() == 1

    assert AuditEntry.objects.get(pk=early_id).seq == 1
    assert AuditEntry.objects.get(pk=late["id"]).seq == 2
    assert verify_chain().ok


def test_a_second_sealer_returns_at_once_instead_of_waiting() -> None:
    with transaction.atomic():
        audit_record(actor=None, action="test.pending")
    holding, release = threading.Event(), threading.Event()

    def hold_the_seal_lock() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=in_thread(hold_the_seal_lock))
    thread.start()
    assert holding.wait(10)
    started = time.monotonic()
    assert audit_seal() == 0
    assert time.monotonic() - started < 1
    release.set()
    thread.join()
    assert audit_seal() == 1
