"""Viral or meme reports (batchedReport) are bundled in triage: one open report per bundle,
the copies merged into it, so analysts do not work through them one by one."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.esp.test_api import XML, code_of, report_id_of, upload
from tests.helpers import png_bytes
from tests.staff.conftest import make_user, sign_in
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.esp.models import EspReport
from tipline.reports.models import Report
from tipline.reports.states import ReportStatus


def report_xml(screen_name: str, *, batched: bool) -> bytes:
    batch = '<batchedReport reason="VIRAL_POTENTIAL_MEME"/>' if batched else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><report>{batch}<incidentSummary>'
        "<incidentType>Child Pornography (possession, manufacture, and distribution)</incidentType>"
        "<incidentDateTime>2026-01-02T03:04:05Z</incidentDateTime></incidentSummary>"
        "<reporter><reportingPerson><email>trust@example.com</email></reportingPerson></reporter>"
        f"<personOrUserReported><screenName>{screen_name}</screenName></personOrUserReported></report>"
    ).encode()


def file_one(client: TestClient, auth: dict[str, str], screen_name: str, image: bytes | None,
             *, batched: bool = True) -> uuid.UUID:
    response = client.post("/ispws/submit", content=report_xml(screen_name, batched=batched),
                           headers={**auth, **XML})
    assert code_of(response.text) == 0, response.text
    report_id = report_id_of(response.text)
    if image is not None:
        assert code_of(upload(client, auth, report_id, image)) == 0
    done = client.post("/ispws/finish", headers=auth, data={"id": str(report_id)})
    assert code_of(done.text) == 0, done.text
    return report_id


def tipline_report(sessions: sessionmaker[Session], partner_report_id: int) -> Report:
    with sessions() as session:
        esp = session.execute(select(EspReport).where(EspReport.report_id == partner_report_id)).scalar_one()
        report = session.get(Report, esp.tipline_report_id)
        assert report is not None
        return report


def test_copies_of_one_meme_become_one_queue_item(esp_client: TestClient, auth: dict[str, str],
                                                  sessions: sessionmaker[Session]) -> None:
    meme = png_bytes(seed=5, size=(48, 32))
    ids = [file_one(esp_client, auth, f"sharer_{i}", meme) for i in range(3)]
    lead, *copies = (tipline_report(sessions, i) for i in ids)
    assert lead.status == ReportStatus.received and lead.merged_into_id is None
    assert lead.bundle_key and lead.bundle_key.startswith("meme:files:")
    for copy in copies:
        assert copy.status == ReportStatus.duplicate
        assert copy.merged_into_id == lead.id
        assert copy.bundle_key == lead.bundle_key


def test_other_files_and_unflagged_reports_are_queued_on_their_own(
        esp_client: TestClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    meme = png_bytes(seed=5, size=(48, 32))
    first = tipline_report(sessions, file_one(esp_client, auth, "sharer_a", meme))
    other_meme = tipline_report(sessions, file_one(esp_client, auth, "sharer_b", png_bytes(seed=6, size=(48, 32))))
    # The same picture, but the partner did not call it viral: it is a report of its own.
    plain = tipline_report(sessions, file_one(esp_client, auth, "sharer_c", meme, batched=False))
    for report in (first, other_meme, plain):
        assert report.status == ReportStatus.received and report.merged_into_id is None
    assert first.bundle_key != other_meme.bundle_key
    assert plain.bundle_key is None


def test_the_queue_shows_how_many_copies_a_bundle_holds(
        esp_client: TestClient, auth: dict[str, str], sessions: sessionmaker[Session],
        client: TestClient, ctx: AppContext) -> None:
    meme = png_bytes(seed=9, size=(40, 30))
    lead = tipline_report(sessions, file_one(esp_client, auth, "sharer_0", meme))
    for i in range(1, 4):
        file_one(esp_client, auth, f"sharer_{i}", meme)
    make_user(ctx, Role.analyst, email="analyst@example.org")
    sign_in(client, "analyst@example.org")
    page = client.get("/staff/queue?source=partner").text
    row = re.search(rf'<tr>(?:(?!</tr>).)*{lead.reference}(?:(?!</tr>).)*</tr>', page, re.S)
    assert row, page
    assert "3 more merged into it" in row.group(0)
    assert "viral or meme bundle" in row.group(0)
    queued = re.findall(r'href="/staff/reports/([0-9a-f-]{36})"', page)
    assert queued == [str(lead.id)]  # the copies are not queued
