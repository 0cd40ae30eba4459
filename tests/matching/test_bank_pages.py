"""The hash bank pages, over HTTP against the real app and database: only admins reach them,
a bank is created with clear field errors, switched off and on, given a threshold; a file
is uploaded, imported in the background, followed on its progress page to the end with its
rejected lines numbered; entries are exported as downloads. Random hashes only."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import BACKEND
from tests.helpers import csrf_token
from tests.staff.conftest import make_user, sign_in
from tipline.accounts.permissions import Role
from tipline.app import create_app
from tipline.audit.models import AuditEntry
from tipline.context import AppContext
from tipline.db import transaction
from tipline.matching import import_jobs, imports
from tipline.matching.models import BankEntry, BankImport, HashBank, HashKind, JobState
from tipline.settings import Settings


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    # No hashing worker: these pages do not need one, and each would start child processes.
    return Settings(data_dir=data_dir, database_url=database_url, quick_exit_url="about:blank",
                    hash_workers=0)


def signed_in(app: Any, ctx: AppContext, role: Role) -> TestClient:
    email = f"{role.value}-{uuid.uuid4().hex[:6]}@example.org"
    make_user(ctx, role, email=email)
    client = TestClient(app, base_url="http://testserver")
    response = sign_in(client, email)
    assert response.status_code == 200, response.text[:300]
    return client


@pytest.fixture
def admin(client: TestClient, ctx: AppContext) -> Iterator[TestClient]:
    with signed_in(client.app, ctx, Role.admin) as who:
        yield who


def md5() -> str:
    return secrets.token_hex(16)


def create(admin: TestClient, **fields: str) -> Any:
    form = {"name": "Example hotline list", "source": "Example Hotline", "description": "",
            "category_scheme": "industry", "default_category": "A1", "pdq_threshold": "31"}
    form.update(fields)
    form["csrf_token"] = csrf_token(admin.get("/staff/banks").text)
    return admin.post("/staff/banks", data=form, follow_redirects=False)


def new_bank(admin: TestClient, **fields: str) -> str:
    response = create(admin, **fields)
    assert response.status_code == 303, response.text[:500]
    match = re.fullmatch(r"/staff/banks/([0-9a-f-]{36})\?done=created", response.headers["location"])
    assert match
    return match.group(1)


def upload(admin: TestClient, bank_id: str, name: str, content: bytes, **fields: str) -> Any:
    token = csrf_token(admin.get(f"/staff/banks/{bank_id}").text)
    data = {"csrf_token": token, "format": "auto", "kind": ""}
    data.update(fields)
    return admin.post(f"/staff/banks/{bank_id}/imports", data=data,
                      files={"file": (name, content, "application/octet-stream")},
                      follow_redirects=False)


def finished_page(admin: TestClient, url: str, timeout: float = 30.0) -> str:
    """The import page once it no longer says running (it reloads itself until then)."""
    deadline = time.monotonic() + timeout
    while True:
        page = admin.get(url)
        assert page.status_code == 200
        if 'data-state="running"' not in page.text:
            assert 'http-equiv="refresh"' not in page.text
            return page.text
        assert '<meta http-equiv="refresh" content="2">' in page.text
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.1)


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', html, re.DOTALL)
    assert match, f"no #{element_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", match.group(2))).strip()


def leftovers(settings: Settings) -> list[Path]:
    """Files of uploads or exports still on disk."""
    folder = settings.data_dir / import_jobs.FILES
    return sorted(folder.rglob("*")) if folder.exists() else []


def audit_actions(ctx: AppContext, bank_id: str) -> list[str]:
    with ctx.sessions() as session:
        return list(session.execute(
            select(AuditEntry.action).where(AuditEntry.object_id == bank_id)
            .order_by(AuditEntry.seq)).scalars())


# --- access --------------------------------------------------------------------------------


def test_only_admins_reach_the_bank_pages(client: TestClient, ctx: AppContext,
                                          admin: TestClient) -> None:
    bank_id = new_bank(admin)
    analyst = signed_in(client.app, ctx, Role.analyst)
    supervisor = signed_in(client.app, ctx, Role.supervisor)
    token = csrf_token(analyst.get("/staff/queue").text)
    for who in (analyst, supervisor):
        assert who.get("/staff/banks").status_code == 404
        assert who.get(f"/staff/banks/{bank_id}").status_code == 404
        assert who.get(f"/staff/banks/{bank_id}/export.csv").status_code == 404
        refused = who.post(f"/staff/banks/{bank_id}/enabled",
                           data={"csrf_token": token, "enabled": "no"})
        assert refused.status_code == 404
        assert 'href="/staff/banks"' not in who.get("/staff/queue").text  # no menu entry
        upload_refused = who.post(f"/staff/banks/{bank_id}/imports", data={"csrf_token": token},
                                  files={"file": ("list.txt", md5().encode(), "text/plain")})
        assert upload_refused.status_code == 404
    nobody = TestClient(client.app)
    assert nobody.get("/staff/banks", follow_redirects=False).headers["location"] == "/staff/login"
    with ctx.sessions() as session:
        assert session.get_one(HashBank, uuid.UUID(bank_id)).enabled
        assert session.execute(select(BankImport)).first() is None
    assert 'href="/staff/banks"' in admin.get("/staff/queue").text
    assert leftovers(ctx.settings) == []


# --- creating, switching, threshold ------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field", "message", "status"), [
    ({"name": "  "}, "name", "A bank name of 1 to 120 characters is needed.", 422),
    ({"category_scheme": ""}, "category_scheme", "Choose a category scheme.", 422),
    ({"pdq_threshold": "thirty"}, "pdq_threshold", "whole number of bits from 0 to 32", 422),
    ({"pdq_threshold": "33"}, "pdq_threshold", "distance from 0 to 32 bits", 422),
    ({"default_category": "C"}, "default_category", "is not a category of the industry scheme", 422),
])
def test_a_bad_bank_form_is_shown_again_with_the_error_at_its_field(
        admin: TestClient, ctx: AppContext, fields: dict[str, str], field: str, message: str,
        status: int) -> None:
    response = create(admin, description="Shared under agreement", **fields)
    assert response.status_code == status
    error = text_of(response.text, f"{field}-error")
    assert message in error
    assert f'aria-describedby="{field}-hint {field}-error"' in response.text or \
        f'aria-describedby="{field}-error"' in response.text
    assert "Shared under agreement" in response.text  # what was typed is kept
    with ctx.sessions() as session:
        assert session.execute(select(HashBank)).first() is None


def test_a_second_bank_of_the_same_name_is_refused(admin: TestClient, ctx: AppContext) -> None:
    new_bank(admin, name="Blue list")
    again = create(admin, name="Blue list")
    assert again.status_code == 409
    assert "already exists" in text_of(again.text, "name-error")
    listing = admin.get("/staff/banks").text
    assert listing.count('href="/staff/banks/') == 1


def test_a_bank_is_listed_switched_off_and_on_and_given_a_threshold(
        admin: TestClient, ctx: AppContext) -> None:
    bank_id = new_bank(admin, name="Green list", category_scheme="iwf", default_category="b",
                       pdq_threshold="28")
    page = admin.get(f"/staff/banks/{bank_id}?done=created").text
    assert text_of(page, "notice") == "The bank was created."
    assert text_of(page, "bank-status").startswith("enabled")
    listing = admin.get("/staff/banks").text
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", listing.split(f'id="bank-{bank_id}"')[1],
                       re.DOTALL)[:8]
    words = [re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in cells]
    assert words == ["Green list", "Example Hotline", "iwf", "B", "28", "enabled", "none yet", "never"]

    token = csrf_token(page)
    off = admin.post(f"/staff/banks/{bank_id}/enabled", data={"csrf_token": token, "enabled": "no"},
                     follow_redirects=False)
    assert off.headers["location"] == f"/staff/banks/{bank_id}?done=disabled"
    page = admin.get(off.headers["location"]).text
    assert text_of(page, "bank-status").startswith("disabled")
    assert "Enable this bank" in page
    admin.post(f"/staff/banks/{bank_id}/enabled", data={"csrf_token": token, "enabled": "yes"})

    saved = admin.post(f"/staff/banks/{bank_id}/threshold",
                       data={"csrf_token": token, "pdq_threshold": "20"}, follow_redirects=False)
    assert saved.headers["location"] == f"/staff/banks/{bank_id}?done=threshold"
    refused = admin.post(f"/staff/banks/{bank_id}/threshold",
                         data={"csrf_token": token, "pdq_threshold": "-1"})
    assert refused.status_code == 422
    assert "0 to 32" in text_of(refused.text, "pdq_threshold-error")
    forged = admin.post(f"/staff/banks/{bank_id}/enabled", data={"csrf_token": "x", "enabled": "no"})
    assert forged.status_code == 403

    with ctx.sessions() as session:
        bank = session.get_one(HashBank, uuid.UUID(bank_id))
        assert (bank.enabled, bank.pdq_threshold, bank.default_category) == (True, 20, "B")
    assert audit_actions(ctx, bank_id) == ["bank.create", "bank.disable", "bank.enable",
                                           "bank.threshold"]


# --- imports -----------------------------------------------------------------------------------


def csv_with_two_bad_lines() -> tuple[bytes, list[str]]:
    good = [md5() for _ in range(8)]
    rows = ["md5,category,label,PhotoDNA"]
    rows += [f"{value},A2,series {n},AAAA" for n, value in enumerate(good[:3])]
    rows.append("not-a-hash,A2,bad,")                       # line 5
    rows += [f"{value},,,," for value in good[3:6]]
    rows.append(f"{md5()},Z9,unknown category,")            # line 9
    rows += [f"{value},b1,,," for value in good[6:]]
    return ("\r\n".join(rows) + "\r\n").encode(), good


def test_a_csv_file_is_imported_and_followed_to_the_end_with_its_bad_lines_numbered(
        admin: TestClient, ctx: AppContext) -> None:
    bank_id = new_bank(admin)
    content, good = csv_with_two_bad_lines()
    response = upload(admin, bank_id, "hotline-list.csv", content)
    assert response.status_code == 303, response.text[:500]
    url = response.headers["location"]
    assert re.fullmatch(rf"/staff/banks/{bank_id}/imports/[0-9a-f-]{{36}}", url)

    page = finished_page(admin, url)
    assert text_of(page, "import-state").startswith("Done.")
    assert text_of(page, "count-lines") == "10"
    assert text_of(page, "count-added") == "8"
    assert text_of(page, "count-rejected") == "2"
    rejects = re.findall(r"<tr><td class=\"num\">(\d+)</td><td>(.*?)</td></tr>", page)
    assert [line for line, _ in rejects] == ["5", "9"]
    assert "hexadecimal" in rejects[0][1] or "MD5" in rejects[0][1]
    assert "Z9" in rejects[1][1]
    assert "PhotoDNA hashes were ignored" in text_of(page, "import-notes")

    with ctx.sessions() as session:
        entries = {(e.value, e.category) for e in session.execute(
            select(BankEntry).where(BankEntry.bank_id == uuid.UUID(bank_id))).scalars()}
        record = session.execute(select(BankImport)).scalar_one()
    assert entries == {(v, "A2") for v in good[:3]} | {(v, "A1") for v in good[3:6]} | \
        {(v, "B1") for v in good[6:]}
    assert (record.filename, record.format, record.state) == ("hotline-list.csv", "csv", JobState.done)
    assert "bank.import" in audit_actions(ctx, bank_id)
    assert leftovers(ctx.settings) == []  # upload removed

    bank_page = admin.get(f"/staff/banks/{bank_id}").text
    assert text_of(bank_page, "bank-entries") == "MD5: 8"
    history = bank_page.split(f'id="import-{record.id}"')[1].split("</tr>")[0]
    cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", history, re.DOTALL)]
    assert cells[1:] == ["Test admin", "hotline-list.csv", "csv", "done", "10", "8", "0", "2",
                         "waiting to start" if record.rematch_state else "—"]

    # The same file again adds nothing: all eight are duplicates.
    again = finished_page(admin, upload(admin, bank_id, "hotline-list.csv", content).headers["location"])
    assert (text_of(again, "count-added"), text_of(again, "count-duplicates")) == ("0", "8")


def test_the_progress_page_reloads_itself_while_the_import_runs(
        admin: TestClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """The import is held at its last step (the hooks that run after it committed), so the
    page is seen while the import still runs in this process, on either database."""
    bank_id = new_bank(admin)
    release, reached = threading.Event(), threading.Event()

    def hold(_bank: uuid.UUID, _import: uuid.UUID, _first: int) -> None:
        reached.set()
        release.wait(30)

    monkeypatch.setattr(imports, "on_entries_added", [*imports.on_entries_added, hold])
    lines = "\n".join(secrets.token_hex(32) for _ in range(50)) + "\n"
    response = upload(admin, bank_id, "pdq-list.txt", lines.encode(), format="plain", kind="pdq")
    url = response.headers["location"]
    try:
        assert reached.wait(30)
        page = admin.get(url).text
        assert text_of(page, "import-state").startswith("Running. 50 lines read so far.")
        assert '<meta http-equiv="refresh" content="2">' in page
        assert 'value="100"' in page and text_of(page, "import-percent") == "100%"
    finally:
        release.set()
    page = finished_page(admin, url)
    assert text_of(page, "count-added") == "50"
    with ctx.sessions() as session:
        kinds = set(session.execute(select(BankEntry.kind)).scalars())
    assert kinds == {HashKind.pdq}


@pytest.mark.skipif(BACKEND == "sqlite", reason="on SQLite the page itself waits for the lock")
def test_an_import_that_cannot_start_yet_is_announced_and_runs_later(
        admin: TestClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another transaction holds the bank's row, so the import cannot record itself: the page
    does not wait for it, and the import runs once the row is free."""
    bank_id = new_bank(admin)
    monkeypatch.setattr(import_jobs, "START_WAIT_SECONDS", 0.5)
    with ctx.sessions() as blocker:
        blocker.execute(select(HashBank).where(HashBank.id == uuid.UUID(bank_id)).with_for_update())
        response = upload(admin, bank_id, "later.txt", f"{md5()}\n".encode())
        assert response.headers["location"] == f"/staff/banks/{bank_id}?done=queued"
        assert "waits for another one to finish" in admin.get(response.headers["location"]).text
    deadline = time.monotonic() + 30
    while True:
        with ctx.sessions() as session:
            record = session.execute(select(BankImport)).scalar_one_or_none()
        if record is not None and record.state is JobState.done:
            break
        assert time.monotonic() < deadline, "the import never ran"
        time.sleep(0.1)
    assert record.added == 1
    assert f'id="import-{record.id}"' in admin.get(f"/staff/banks/{bank_id}").text


def test_rematch_progress_is_shown_in_words(admin: TestClient, ctx: AppContext) -> None:
    bank_id = new_bank(admin)
    url = upload(admin, bank_id, "list.txt", f"{md5()}\n".encode()).headers["location"]
    finished_page(admin, url)
    with transaction(ctx.sessions) as session:
        record = session.execute(select(BankImport)).scalar_one()
        record.rematch_state, record.rematch_total, record.rematch_done = JobState.running, 5000, 1234
    page = admin.get(url).text
    assert text_of(page, "rematch") == "1,234 of 5,000 files re-checked"
    assert '<meta http-equiv="refresh" content="5">' in page
    with transaction(ctx.sessions) as session:
        session.execute(select(BankImport)).scalar_one().rematch_state = JobState.done
    assert text_of(admin.get(url).text, "rematch") == "done (5,000 files re-checked)"


def test_refused_uploads_leave_nothing_behind(admin: TestClient, ctx: AppContext,
                                              settings: Settings) -> None:
    bank_id = new_bank(admin)
    no_file = admin.post(f"/staff/banks/{bank_id}/imports",
                         data={"csrf_token": csrf_token(admin.get("/staff/banks").text)},
                         files={"file": ("", b"", "application/octet-stream")})
    assert no_file.status_code == 422
    assert text_of(no_file.text, "file-error") == "Choose a file that is not empty."
    forged = admin.post(f"/staff/banks/{bank_id}/imports", data={"csrf_token": "forged"},
                        files={"file": ("list.txt", md5().encode(), "text/plain")})
    assert forged.status_code == 403
    bad_kind = upload(admin, bank_id, "list.txt", md5().encode(), kind="crc32")
    assert bad_kind.status_code == 422
    assert text_of(bad_kind.text, "kind-error") == "Choose a hash type."
    missing = admin.post(f"/staff/banks/{uuid.uuid4()}/imports",
                         data={"csrf_token": csrf_token(admin.get("/staff/banks").text)},
                         files={"file": ("list.txt", md5().encode(), "text/plain")})
    assert missing.status_code == 404

    small = settings.model_copy(update={"bank_import_max_bytes": 2048})
    with TestClient(create_app(small, "staff")) as other:
        limited = signed_in(other.app, other.app.state.ctx, Role.admin)  # type: ignore[attr-defined]
        too_big = upload(limited, bank_id, "big.txt", ("\n".join(md5() for _ in range(100))).encode())
        limited.close()
    assert too_big.status_code == 413
    assert text_of(too_big.text, "file-error") == \
        "The file is larger than 2 KB, the most this site accepts for a bank import."

    with ctx.sessions() as session:
        assert session.execute(select(BankImport)).first() is None
    assert leftovers(settings) == []


# --- exports -----------------------------------------------------------------------------------


def test_entries_are_exported_as_csv_and_vics_downloads(admin: TestClient, ctx: AppContext) -> None:
    bank_id = new_bank(admin, name="Red list / 2026", category_scheme="vics", default_category="1")
    values = sorted(md5() for _ in range(5))
    sha1 = secrets.token_hex(20)
    text = "md5,category\n" + "".join(f"{v},2\n" for v in values)
    finished_page(admin, upload(admin, bank_id, "red.csv", text.encode()).headers["location"])
    finished_page(admin, upload(admin, bank_id, "sha1.txt", f"{sha1}\n".encode()).headers["location"])

    exported = admin.get(f"/staff/banks/{bank_id}/export.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="Red-list-2026.csv"'
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted((r["kind"], r["value"], r["category"]) for r in rows) == \
        sorted([("md5", v, "2") for v in values] + [("sha1", sha1, "1")])

    vics = admin.get(f"/staff/banks/{bank_id}/export.json")
    assert vics.status_code == 200
    assert vics.headers["content-disposition"] == 'attachment; filename="Red-list-2026.json"'
    document = json.loads(vics.content)
    media = document["value"]
    assert sorted(m["MD5"].lower() for m in media if m.get("MD5")) == values
    assert [m["SHA1"].lower() for m in media if m.get("SHA1")] == [sha1]
    assert {m["Category"] for m in media} == {1, 2}
    assert audit_actions(ctx, bank_id).count("bank.export") == 2
    assert leftovers(ctx.settings) == []

