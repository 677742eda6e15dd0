"""An auditor exports the filtered trail from its page in a real browser; the file and the
digest from the page's link verify, and an edit of the download does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from audit.export_check import export_check
from tests import factories
from tests.support.browser import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_an_auditor_downloads_a_filtered_csv_and_its_digest_from_the_trail(
    live_server, page: Page, auditor, tmp_path: Path
) -> None:
    factories.audit_entries(3, action="refund.approve", reason="over the limit")
    factories.audit_entries(5, action="case.claim")
    sign_in(page, live_server, auditor)
    page.goto(f"{live_server.url}/audit/")
    page.fill("#f-action", "refund.approve")
    page.get_by_role("button", name="Filter").click()
    exports = page.get_by_test_id("trail-export")
    expect(exports).to_contain_text("sealed up to #8")
    expect(page.locator("tr[data-entry]")).to_have_count(3)
    page.screenshot(path=str(tmp_path / "trail.png"))

    with page.expect_download() as csv_download:
        exports.get_by_role("link", name="CSV").first.click()
    with page.expect_download() as digest_download:
        exports.locator("a[href*='export.csv.digest']").click()
    path = tmp_path / csv_download.value.suggested_filename
    assert path.name == "audit-trail-8.csv"
    csv_download.value.save_as(path)
    digest_download.value.save_as(tmp_path / f"{path.name}.digest")

    check = export_check(path)
    assert check.ok, check.problems
    assert check.rows == 3
    path.write_text(path.read_text().replace("over the limit", "under the limit", 1))
    assert "row 1 (line 2) (seq 1) was edited" in export_check(path).problems[0]
