"""Hash-first triage in a real browser (Debian's Chromium) against a real `tipline serve`:
a file already known from a hash bank shows as a labelled panel, no picture of it is ever
requested, and revealing it anyway needs a reason that goes on the record."""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.conftest import Server
from tests.browser.test_staff_flow import (
    _click_and_wait,
    _file_report,
    _image_loaded,
    _staff_sign_in,
)
from tests.helpers import png_bytes
from tests.staff.conftest import make_user
from tipline import clock
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.db import transaction
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.matching.models import BankEntry, CategoryScheme, HashBank, HashKind, HashMatch
from tipline.reports.models import Report

pytestmark = pytest.mark.browser

REASON = "victim identification"
ANALYST = "known.analyst@example.org"


def _mark_known(sessions: sessionmaker[Session], report_id: uuid.UUID, evidence_id: uuid.UUID) -> None:
    """A VICS bank with one random hash (never a real one) and the match the matcher would
    store for this file."""
    with transaction(sessions) as session:
        bank = HashBank(name="Example VICS Set", category_scheme=CategoryScheme.vics,
                        created_at=clock.now(), updated_at=clock.now())
        session.add(bank)
        session.flush()
        entry = BankEntry(bank_id=bank.id, kind=HashKind.md5, value=secrets.token_hex(16),
                          category="1", added_at=clock.now())
        session.add(entry)
        session.flush()
        session.add(HashMatch(report_id=report_id, evidence_id=evidence_id, bank_id=bank.id,
                              entry_id=entry.id, kind=HashKind.md5, distance=0, category="1",
                              matched_at=clock.now()))


def test_known_material_panel_and_reveal_with_a_reason(
    server: Server, sessions: sessionmaker[Session], new_context: Any, tmp_path: Path,
) -> None:
    make_user(cast(AppContext, SimpleNamespace(sessions=sessions)), Role.analyst, email=ANALYST)
    picture = tmp_path / "screenshot.png"
    picture.write_bytes(png_bytes(seed=17))
    reference, _codename = _file_report(new_context().new_page(), server, picture)
    with sessions() as session:
        report_id = session.execute(select(Report.id).where(Report.reference == reference)).scalar_one()
        evidence_id = session.execute(
            select(EvidenceFile.id).where(EvidenceFile.report_id == report_id)).scalar_one()
    _mark_known(sessions, report_id, evidence_id)

    analyst = new_context().new_page()
    requested: list[str] = []
    analyst.on("request", lambda request: requested.append(request.url))
    _staff_sign_in(analyst, server, ANALYST)
    row = analyst.locator("#queue tbody tr", has_text=reference)
    assert row.locator(".known-material").inner_text() == "known material"
    with analyst.expect_navigation():
        row.get_by_role("link", name=reference).click()

    # The summary at the top and the panel in place of the picture, with real headings.
    summary = analyst.locator("#known-summary")
    assert summary.get_by_role("heading", name="Known material").is_visible()
    assert "The only file is known material: nobody needs to view it." in summary.inner_text()
    assert "VICS 1 – Child Abuse Material" in summary.inner_text()
    article = analyst.locator(f"#evidence-{evidence_id}")
    panel = article.locator(f"#known-{evidence_id}")
    assert panel.get_by_role("heading", name="Known material: no need to view").is_visible()
    assert "Example VICS Set" in panel.inner_text() and "MD5, exact" in panel.inner_text()
    assert article.locator("img").count() == 0
    assert not [url for url in requested if f"/staff/evidence/{evidence_id}/" in url]
    analyst.screenshot(path=str(tmp_path / "known-material.png"), full_page=True)

    # "Reveal anyway" opens a form whose reason is labelled and required: the browser
    # refuses to send it empty, and nothing is recorded.
    reason = analyst.get_by_label("Why do you need to see it? (required, recorded; e.g. victim identification)")
    assert not reason.is_visible()
    article.get_by_text("Reveal anyway").click()
    assert reason.is_visible()
    article.locator("button.reveal").click()
    assert reason.evaluate("field => field.validity.valueMissing") is True
    assert analyst.url == server.url(f"/staff/reports/{report_id}")
    with sessions() as session:
        actions = list(session.execute(select(CustodyEvent.action).where(
            CustodyEvent.evidence_id == evidence_id)).scalars())
    assert "revealed" not in actions and "viewed" not in actions

    # With a reason, the reveal is recorded, then the file is shown through the grant.
    reason.fill(REASON)
    _click_and_wait(analyst, f"#evidence-{evidence_id} button.reveal")
    revealed = article.locator("img.evidence-thumb.revealed")
    assert (revealed.get_attribute("src") or "").startswith(f"/staff/evidence/{evidence_id}/original?grant=")
    assert _image_loaded(analyst, f"#evidence-{evidence_id} img.revealed")
    assert not [url for url in requested if url.endswith(f"/staff/evidence/{evidence_id}/preview")]
    with sessions() as session:
        events = list(session.execute(select(CustodyEvent).where(
            CustodyEvent.evidence_id == evidence_id, CustodyEvent.action == "revealed")).scalars())
    assert len(events) == 1
    details = json.loads(events[0].details)
    assert details["reason"] == REASON and details["known_material"] is True
    assert details["banks"] == ["Example VICS Set"] and details["categories"] == ["1"]
