"""Hash bank pages in a real browser (Debian's Chromium, JavaScript off) against a real
`tipline serve`: an admin creates a bank (after one field error), imports a CSV file through
the form, follows the import page to its result with the rejected lines numbered, downloads
the entries, and disables the bank. Random hashes only."""

from __future__ import annotations

import csv
import io
import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.conftest import Server
from tests.browser.test_staff_flow import _click_and_wait, _staff_sign_in
from tests.staff.conftest import make_user
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.matching.models import BankEntry, HashBank

pytestmark = pytest.mark.browser

ADMIN = "bank.admin@example.org"


def _bank_file(folder: Path) -> tuple[Path, list[str]]:
    good = [secrets.token_hex(16) for _ in range(6)]
    rows = ["md5,category,label"]
    rows += [f"{value},A2,series one" for value in good[:3]]
    rows.append("0123,A2,too short")                  # line 5
    rows += [f"{value},," for value in good[3:]]
    rows.append(f"{secrets.token_hex(16)},C,no such category")  # line 9
    path = folder / "partner-hotline-list.csv"
    path.write_text("\n".join(rows) + "\n")
    return path, good


def test_an_admin_creates_a_bank_and_imports_a_file_without_javascript(
    server: Server, sessions: sessionmaker[Session], new_context: Any, tmp_path: Path,
) -> None:
    make_user(cast(AppContext, SimpleNamespace(sessions=sessions)), Role.admin, email=ADMIN)
    page = new_context(javascript=False).new_page()
    _staff_sign_in(page, server, ADMIN)
    page.get_by_role("link", name="Hash banks").click()
    assert page.url == server.url("/staff/banks")
    assert page.locator("#no-banks").is_visible()

    # A category the scheme does not have is refused at its field; the rest is kept.
    page.get_by_label("Name").fill("Partner hotline list")
    page.get_by_label("Source", exact=True).fill("Example Partner Hotline")
    page.get_by_label("Category scheme").select_option("industry")
    page.get_by_label("Default category").fill("Z1")
    assert _click_and_wait(page, "#create-bank").status == 422
    assert "not a category of the industry scheme" in page.locator("#default_category-error").inner_text()
    assert page.get_by_label("Default category").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Name").input_value() == "Partner hotline list"
    page.get_by_label("Default category").fill("A1")
    _click_and_wait(page, "#create-bank")
    assert page.locator("#notice").inner_text() == "The bank was created."
    assert page.locator("h1").inner_text() == "Hash bank: Partner hotline list"
    bank_url = page.url.split("?")[0]

    # The import: the form sends the file, the result page lists the two bad lines.
    bank_file, good = _bank_file(tmp_path)
    page.get_by_label("Format").select_option("csv")
    page.locator("#file").set_input_files(str(bank_file))
    _click_and_wait(page, "#start-import")
    assert "/imports/" in page.url
    page.wait_for_selector("#import-state[data-state='done']", timeout=30_000)
    assert page.locator("#count-added").inner_text() == "6"
    assert page.locator("#count-rejected").inner_text() == "2"
    rows = page.locator("#rejects tbody tr")
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())] == ["5", "9"]
    assert page.locator("#rejects thead th").first.inner_text() == "Line"
    page.screenshot(path=str(tmp_path / "import-result.png"), full_page=True)

    # The bank page shows the import and offers the entries as a download.
    page.get_by_role("link", name="Back to the bank Partner hotline list").click()
    assert page.url == bank_url
    history = page.locator("#imports tbody tr")
    assert history.count() == 1
    assert history.first.locator(".import-state").inner_text() == "done"
    page.screenshot(path=str(tmp_path / "bank.png"), full_page=True)
    with page.expect_download() as waiting:
        page.get_by_role("link", name="All entries as CSV (kind, value, category, label)").click()
    download = waiting.value
    assert download.suggested_filename == "Partner-hotline-list.csv"
    exported = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert sorted(row["value"] for row in exported) == sorted(good)

    _click_and_wait(page, "#toggle-bank")
    assert page.locator("#bank-status").inner_text().startswith("disabled")
    with sessions() as session:
        bank = session.execute(select(HashBank)).scalar_one()
        assert not bank.enabled and bank.default_category == "A1"
        categories = dict(session.execute(select(BankEntry.value, BankEntry.category)).all())
    assert categories == {**dict.fromkeys(good[:3], "A2"), **dict.fromkeys(good[3:], "A1")}
