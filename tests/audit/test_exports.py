"""Exports of the trail: streamed, in chain order, each with a signed digest that catches an
edited line, a file cut short and a forged digest; audited; refused cleanly."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import StreamingHttpResponse

from audit.chain import document_hash
from audit.exports import digest_signed, record_document
from audit.models import AuditEntry
from tests import factories

pytestmark = pytest.mark.django_db


def download(client: Any, url: str) -> tuple[StreamingHttpResponse, bytes]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    return response, b"".join(response.streaming_content)


def jsonl_parts(body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any], bytes]:
    """The records, the digest of the last line, and the content before it."""
    lines = body.splitlines(keepends=True)
    return (
        [json.loads(line) for line in lines[:-1]],
        json.loads(lines[-1])["digest"],
        b"".join(lines[:-1]),
    )


@pytest.fixture
def trail(db: None) -> dict[str, list[AuditEntry]]:
    """Sealed entries of two kinds, and one still sealing."""
    refunds = factories.audit_entries(3, action="refund.approve", reason='over, the "limit"\n')
    others = factories.audit_entries(4, action="case.claim")
    more = factories.audit_entries(2, action="refund.approve", workflow="refund-approval")
    sealing = factories.audit_entries(1, action="refund.approve", sealed=False)
    return {"refunds": refunds + more, "others": others, "sealing": sealing}


def test_a_jsonl_export_streams_the_filtered_sealed_entries_in_chain_order(
    client, auditor, trail
) -> None:
    client.force_login(auditor)
    response, body = download(client, "/audit/export.jsonl?action=refund.approve")
    records, digest, _ = jsonl_parts(body)
    expected = trail["refunds"]
    assert [r["id"] for r in records] == [e.pk for e in expected]
    assert [r["seq"] for r in records] == sorted(e.seq for e in expected)
    first = records[0]
    assert first["reason"] == 'over, the "limit"\n'
    assert first["hash"] == expected[0].hash and first["prev_hash"] == expected[0].prev_hash
    assert records[-1]["workflow"] == "refund-approval"
    # The entry still sealing is not in it; the export names the head it covers.
    assert trail["sealing"][0].pk not in {r["id"] for r in records}
    newest = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").first()
    assert digest["head"] == {"seq": newest.seq, "hash": newest.hash}
    assert response["X-Audit-Until-Seq"] == str(newest.seq)
    assert f'filename="audit-trail-{newest.seq}.jsonl"' in response["Content-Disposition"]


def test_a_csv_export_holds_the_same_entries_with_a_header_and_json_columns(
    client, auditor, trail
) -> None:
    client.force_login(auditor)
    _, body = download(client, "/audit/export.csv?action=refund.approve")
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    assert [int(r["id"]) for r in rows] == [e.pk for e in trail["refunds"]]
    assert rows[0]["reason"] == 'over, the "limit"\n'
    assert json.loads(rows[0]["actor_roles"]) == []
    assert rows[0]["prev_hash"] == trail["refunds"][0].prev_hash


def test_the_digest_is_the_sha256_of_the_exact_bytes_and_the_digest_url_gives_it_again(
    client, auditor, trail
) -> None:
    client.force_login(auditor)
    response, body = download(client, "/audit/export.jsonl?action=case.claim")
    records, digest, content = jsonl_parts(body)
    assert digest["sha256"] == hashlib.sha256(content).hexdigest()
    assert digest["rows"] == len(records) == 4
    assert (digest["first_seq"], digest["last_seq"]) == (records[0]["seq"], records[-1]["seq"])
    assert digest["filter"] == {"action": "case.claim"}

    link = response["Link"]
    assert link.endswith('rel="describedby"')
    again = client.get(link[1 : link.index(">")]).json()
    assert again == digest

    _, csv_body = download(client, "/audit/export.csv?action=case.claim")
    seq = digest["head"]["seq"]
    csv_digest = client.get(f"/audit/export.csv.digest?action=case.claim&until_seq={seq}").json()
    assert csv_digest["sha256"] == hashlib.sha256(csv_body).hexdigest()
    assert csv_digest["rows"] == 4


def test_an_export_pinned_to_a_chain_head_gives_the_same_bytes_later(
    client, auditor, trail
) -> None:
    client.force_login(auditor)
    seq = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").first().seq
    url = f"/audit/export.csv?action=refund.approve&until_seq={seq}"
    _, before = download(client, url)
    factories.audit_entries(3, action="refund.approve")  # sealed after the pin
    _, after = download(client, url)
    assert after == before
    _, unpinned = download(client, "/audit/export.csv?action=refund.approve")
    assert unpinned.count(b"\n") == before.count(b"\n") + 4  # three new, and the one sealing


def test_an_export_is_audited_with_its_filter_row_count_and_digest(client, auditor, trail) -> None:
    client.force_login(auditor)
    _, body = download(client, "/audit/export.jsonl?action=case.claim")
    _, digest, _ = jsonl_parts(body)
    entry = AuditEntry.objects.get(action="audit.export")
    assert entry.actor_id == auditor.pk
    assert entry.after["filter"] == {"action": "case.claim"}
    assert entry.after["rows"] == 4
    assert entry.after["sha256"] == digest["sha256"]
    assert entry.after["complete"] is True


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_export_cut_off_by_the_client_is_audited_as_incomplete(client, auditor, trail) -> None:
    factories.audit_entries(400, action="bulk.thing", reason="x" * 400)
    client.force_login(auditor)
    response = client.get("/audit/export.jsonl")
    next(iter(response.streaming_content))  # one chunk, then the browser goes away
    response.close()  # what the server does then (and the request's connection is closed)
    entry = AuditEntry.objects.get(action="audit.export")
    assert entry.after["complete"] is False
    assert 0 < entry.after["rows"] < AuditEntry.objects.filter(seq__isnull=False).count()


@pytest.mark.parametrize(
    "url",
    [
        "/audit/export.jsonl",
        "/audit/export.csv",
        "/audit/export.jsonl.digest",
        "/audit/export.csv.digest",
    ],
)
def test_a_person_without_the_export_permission_gets_403(client, operator, trail, url) -> None:
    client.force_login(operator)
    assert client.get(url).status_code == 403
    assert not AuditEntry.objects.filter(action="audit.export").exists()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=last+tuesday", "since: Enter a date (YYYY-MM-DD) or a time."),
        ("approval=abc", "approval: Enter a number."),
        ("acter=olivia", "unknown filter acter: the filters are since, until, actor"),
        ("until_seq=abc", "until_seq must be a sequence number, got &#x27;abc&#x27;"),
        ("until_seq=9999", "until_seq 9999 is not a sealed entry: the chain runs from seq 1"),
    ],
)
@pytest.mark.parametrize("path", ["/audit/export.csv", "/audit/export.jsonl.digest"])
def test_bad_filter_input_is_a_400_that_says_what_is_wrong(
    client, auditor, trail, path, query, message
) -> None:
    client.force_login(auditor)
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not AuditEntry.objects.filter(action="audit.export").exists()


def test_a_manager_exports_only_what_their_role_sees_and_the_digest_says_so(
    client, make_user, trail
) -> None:
    manager = make_user("manager", username="mara")
    client.force_login(manager)
    _, body = download(client, "/audit/export.jsonl")
    records, digest, _ = jsonl_parts(body)
    assert records == []  # "thing" is no kind of object a manager may view
    assert digest["scope"] == "visible to mara"


def test_the_trail_page_links_exports_of_its_filter_pinned_to_the_head(
    client, auditor, trail
) -> None:
    client.force_login(auditor)
    page = client.get("/audit/?action=case.claim").content.decode()
    seq = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").first().seq
    assert f'href="/audit/export.csv?action=case.claim&amp;until_seq={seq}"' in page
    assert f'href="/audit/export.jsonl.digest?action=case.claim&amp;until_seq={seq}"' in page


# --- the command, and checking a file against its digest ----------------------------------------


def test_audit_export_writes_the_file_and_a_signed_digest_and_is_audited_as_the_command(
    tmp_path: Path, trail, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "refunds.csv"
    call_command("audit_export", format="csv", action="refund.approve", output=out)
    digest = json.loads((tmp_path / "refunds.csv.digest").read_text())
    assert digest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest["rows"] == 5
    assert digest["filter"] == {"action": "refund.approve"}
    assert digest["created_at"]
    assert digest_signed(digest) == digest
    assert "wrote 5 entries" in capsys.readouterr().out
    entry = AuditEntry.objects.get(action="audit.export")
    assert entry.actor_kind == "command"
    assert entry.actor_label.startswith("manage.py audit_export (")
    assert entry.after["sha256"] == digest["sha256"]

    call_command("audit_export", verify=out)
    assert "verifies: 5 entries" in capsys.readouterr().out


def test_audit_export_refuses_bad_filters_and_a_missing_output(tmp_path: Path, trail) -> None:
    with pytest.raises(CommandError, match="since: Enter a date"):
        call_command("audit_export", format="jsonl", since="soon", output=tmp_path / "x")
    with pytest.raises(CommandError, match="--output FILE"):
        call_command("audit_export", format="jsonl")
    with pytest.raises(CommandError, match="no such file"):
        call_command("audit_export", verify=tmp_path / "missing.jsonl")


@pytest.fixture
def exported(tmp_path: Path, trail) -> dict[str, Path]:
    files = {}
    for fmt in ("jsonl", "csv"):
        files[fmt] = tmp_path / f"trail.{fmt}"
        call_command("audit_export", format=fmt, output=files[fmt])
    return files


def refused(path: Path, **options: Any) -> str:
    with pytest.raises(CommandError) as excinfo:
        call_command("audit_export", verify=path, **options)
    return str(excinfo.value)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_editing_one_exported_line_is_detected_and_named(exported, fmt: str) -> None:
    path = exported[fmt]
    text = path.read_text()
    assert text.count("case.claim") == 4
    path.write_text(text.replace("case.claim", "case.clam", 1))
    message = refused(path)
    assert "does NOT verify" in message
    # Three refund entries come first in the chain, each reason two lines long in CSV.
    where = "row 4" if fmt == "jsonl" else "row 4 (line 8)"
    assert f"{where} (seq 4) was edited: its hash does not match its content" in message


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_file_cut_short_is_detected(exported, fmt: str) -> None:
    path = exported[fmt]
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]))
    assert "cut short: it holds 7 of the 9 rows the digest covers, ending at seq 7" in refused(path)
    path.write_bytes(b"".join(lines)[:-40])  # cut in the middle of the last line
    message = refused(path)
    assert "cut short: it holds 8 of the 9 rows" in message
    assert "its last line is incomplete" in message
    assert "edited" not in message


def test_a_digest_forged_without_the_key_is_detected(exported) -> None:
    path = exported["jsonl"]
    path.write_text(path.read_text().replace("case.claim", "case.clam"))
    digest_file = Path(f"{path}.digest")
    digest = json.loads(digest_file.read_text())
    digest["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    digest_file.write_text(json.dumps(digest))
    message = refused(path)
    assert "HMAC does not match: the digest was forged or edited" in message


def test_rewritten_entries_with_fresh_hashes_are_detected_by_their_links(exported) -> None:
    """Even with a recomputed entry hash the next line still points at the old one."""
    path = exported["jsonl"]
    lines = path.read_text().splitlines(keepends=True)
    record = json.loads(lines[1])
    record["reason"] = "quietly"
    record["hash"] = document_hash(record["prev_hash"], record_document(record))
    lines[1] = json.dumps(record) + "\n"
    path.write_text("".join(lines))
    assert "row 3 (seq 3) does not chain onto the row before it" in refused(path)


def test_a_browser_download_verifies_with_its_last_line_or_the_digest_url(
    client, auditor, trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client.force_login(auditor)
    response, body = download(client, "/audit/export.jsonl")
    jsonl = tmp_path / "download.jsonl"
    jsonl.write_bytes(body)
    call_command("audit_export", verify=jsonl)
    assert "verifies: 9 entries" in capsys.readouterr().out

    # The last line lost: no digest in the file; the digest from its address still checks it.
    jsonl.write_bytes(b"".join(body.splitlines(keepends=True)[:-1]))
    assert "no digest" in refused(jsonl)
    digest = tmp_path / "download.digest"
    link = response["Link"]
    digest.write_bytes(client.get(link[1 : link.index(">")]).content)
    call_command("audit_export", verify=jsonl, digest=digest)

    _, csv_body = download(client, f"/audit/export.csv?until_seq={response['X-Audit-Until-Seq']}")
    csv_file = tmp_path / "download.csv"
    csv_file.write_bytes(csv_body)
    csv_digest = client.get(f"/audit/export.csv.digest?until_seq={response['X-Audit-Until-Seq']}")
    Path(f"{csv_file}.digest").write_bytes(csv_digest.content)
    call_command("audit_export", verify=csv_file)


def test_an_empty_trail_exports_nothing_with_a_digest_that_verifies(
    client, auditor, tmp_path: Path
) -> None:
    client.force_login(auditor)
    _, body = download(client, "/audit/export.jsonl")
    records, digest, content = jsonl_parts(body)
    assert (records, content, digest["rows"], digest["head"]) == ([], b"", 0, None)
    path = tmp_path / "empty.jsonl"
    path.write_bytes(body)
    call_command("audit_export", verify=path)
