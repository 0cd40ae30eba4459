"""The /ispws API in process: the client's own request bytes, the documented answers."""

from __future__ import annotations

import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.esp.conftest import GOLDEN, basic, make_partner
from tests.helpers import png_bytes
from tipline.context import AppContext
from tipline.esp import service
from tipline.esp.models import EspFile, EspReport, EspReportState
from tipline.esp.service import Credentials
from tipline.evidence import service as evidence
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.reports.enums import Source
from tipline.reports.models import Report
from tipline.triage.models import ReportIdentifier

XML = {"Content-Type": "text/xml; charset=utf-8"}
DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'


def code_of(body: str) -> int:
    match = re.search(r"<responseCode>(\d+)</responseCode>", body)
    assert match, body
    return int(match.group(1))


def report_id_of(body: str) -> int:
    match = re.search(r"<reportId>(\d+)</reportId>", body)
    assert match, body
    return int(match.group(1))


def submit(client: TestClient, auth: dict[str, str], name: str = "client_submit_minimal.xml") -> int:
    response = client.post("/ispws/submit", content=(GOLDEN / name).read_bytes(), headers={**auth, **XML})
    assert response.status_code == 200 and code_of(response.text) == 0, response.text
    return report_id_of(response.text)


def upload(client: TestClient, auth: dict[str, str], report_id: int, data: bytes, name: str = "a.png") -> str:
    response = client.post("/ispws/upload", headers=auth, data={"id": str(report_id)},
                           files={"file": (name, data, "image/png")})
    return response.text


def test_status_echoes_the_partner(esp_client: TestClient, auth: dict[str, str], partner: Credentials) -> None:
    response = esp_client.get("/ispws/status", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["request-id"])
    assert response.text == (f"{DECL}<reportResponse><responseCode>0</responseCode><responseDescription>"
                             f"Remote User : {partner.username}, Remote Ip : testclient"
                             "</responseDescription></reportResponse>")


def test_partner_answers_carry_the_security_headers_and_other_requests_still_route(
        esp_client: TestClient, auth: dict[str, str]) -> None:
    # The partner lane (api.PartnerLane) answers these itself; the headers must not depend on it.
    for response in (esp_client.get("/ispws/status", headers=auth), esp_client.get("/ispws/status")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # What the lane does not know goes on to the application as before.
    assert esp_client.get("/ispws/submit", headers=auth).status_code == 405
    assert esp_client.post("/ispws/nothing", headers=auth).status_code == 404
    assert esp_client.get("/healthz").json() == {"status": "ok", "surface": "partner"}


@pytest.mark.parametrize("header", [
    None, "Basic " + "bm9wZTpub3Bl", "Bearer abc", "Basic !!!",
])
def test_wrong_credentials_get_401_with_the_realm(esp_client: TestClient, partner: Credentials,
                                                  header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for path in ("/ispws/status", "/ispws/xsd"):
        response = esp_client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="ESP Web Services"'
        assert response.content == b""
    wrong = esp_client.post("/ispws/submit", headers={**basic(partner.username, "wrong"), **XML},
                            content=(GOLDEN / "client_submit_minimal.xml").read_bytes())
    assert wrong.status_code == 401


def test_full_flow_with_the_clients_bytes(esp_client: TestClient, esp_ctx: AppContext, auth: dict[str, str],
                                          sessions: sessionmaker[Session]) -> None:
    report_id = submit(esp_client, auth, "client_submit_full.xml")
    assert 100_000_000 <= report_id <= 999_999_999
    image = png_bytes(seed=7)
    text = upload(esp_client, auth, report_id, image, "IMG_0001.png")
    assert code_of(text) == 0
    file_id = re.search(r"<fileId>([0-9a-f]{32})</fileId>", text).group(1)  # type: ignore[union-attr]
    assert f"<hash>{hashlib.md5(image).hexdigest()}</hash>" in text
    second = upload(esp_client, auth, report_id, b"synthetic text", "notes.txt")
    second_id = re.search(r"<fileId>([0-9a-f]{32})</fileId>", second).group(1)  # type: ignore[union-attr]

    details = (GOLDEN / "client_fileinfo_full.xml").read_bytes()
    details = details.replace(b"7000001", str(report_id).encode()).replace(
        b"ffacf0e52ad2a95ed07aaad9788a1205", file_id.encode())
    info = esp_client.post("/ispws/fileinfo", content=details, headers={**auth, **XML})
    assert info.text == (f"{DECL}<reportResponse><responseCode>0</responseCode><responseDescription>Success"
                         f"</responseDescription><reportId>{report_id}</reportId><fileId>{file_id}</fileId>"
                         "</reportResponse>")

    done = esp_client.post("/ispws/finish", data={"id": str(report_id)}, headers=auth)
    assert done.text == (f"{DECL}<reportDoneResponse><responseCode>0</responseCode><reportId>{report_id}"
                         f"</reportId><files><fileId>{file_id}</fileId><fileId>{second_id}</fileId></files>"
                         "</reportDoneResponse>")

    with sessions() as session:
        esp = session.execute(select(EspReport).where(EspReport.report_id == report_id)).scalar_one()
        assert esp.state == EspReportState.finished
        report = session.get(Report, esp.tipline_report_id)
        assert report is not None and report.source == Source.partner
        assert report.incident_types == ["csam", "sextortion"]
        assert "partner escalated: Synthetic escalation text" in report.priority_reasons
        assert "partner annotation: sextortion" in report.priority_reasons
        assert report.suspect["emails"] == [] and "sam_s" in report.suspect["usernames"]
        assert "192.0.2.10" in report.suspect["usernames"]
        assert "https://example.com/u/sam_s" in report.suspect["profile_links"]
        # The intended recipient is not a suspect: kept apart, with its role. The victim has
        # no identifier in this document, so there is no entry for it.
        assert "ivy_r" not in report.suspect["usernames"]
        assert report.suspect["other_parties"] == [{"role": "intended_recipient", "screen_names": ["ivy_r"],
                                                    "emails": [], "phones": [], "profile_urls": []}]
        # ... and correlation indexes it (under the report's platform), as it does the suspect's.
        indexed = set(session.execute(select(ReportIdentifier.value).where(
            ReportIdentifier.report_id == report.id)).scalars())
        assert {"exampleapp:ivy_r", "exampleapp:sam_s"} <= indexed
        assert report.urls == ["https://example.invalid/a", "https://example.invalid/b"]
        assert report.child_age_band.value == "9_12" and report.reporter_country == "US"
        files = evidence.list_for_report(session, report.id)
        assert sorted(f.md5 for f in files) == sorted([hashlib.md5(image).hexdigest(),
                                                       hashlib.md5(b"synthetic text").hexdigest()])
        rows = {r.file_id: r for r in session.execute(select(EspFile)).scalars()}
        assert rows[file_id].viewed_by_esp is True and rows[file_id].needs_legal_basis is False
        assert rows[second_id].needs_legal_basis is True
        actions = sorted(session.execute(select(CustodyEvent.action)).scalars())
        assert actions == ["described", "described", "received", "received"]
        vault = evidence.verify_vault(session, esp_ctx.blobs, esp_ctx.keys)
        assert vault.healthy and vault.checked == 2 and not vault.orphans

    again = esp_client.post("/ispws/retract", data={"id": str(report_id)}, headers=auth)
    assert code_of(again.text) == 5102 and "Report already finished" in again.text
    late = upload(esp_client, auth, report_id, image)
    assert code_of(late) == 5102
    with sessions() as session:
        assert session.execute(select(EvidenceFile)).scalars().all().__len__() == 2


def test_retract_then_finish_answers_5101_as_report_done(esp_client: TestClient, esp_ctx: AppContext,
                                                         auth: dict[str, str]) -> None:
    report_id = submit(esp_client, auth)
    assert code_of(upload(esp_client, auth, report_id, png_bytes(seed=2))) == 0
    retracted = esp_client.post("/ispws/retract", data={"id": str(report_id)}, headers=auth)
    assert retracted.text == (f"{DECL}<reportResponse><responseCode>0</responseCode><responseDescription>"
                              f"Success</responseDescription><reportId>{report_id}</reportId></reportResponse>")
    assert list(esp_ctx.blobs.all_names()) == []  # the staged file is gone
    # multipart, as some clients send it
    finish = esp_client.post("/ispws/finish", files={"id": (None, str(report_id))}, headers=auth)
    assert finish.text == (f"{DECL}<reportDoneResponse><responseCode>5101</responseCode><reportId>{report_id}"
                           "</reportId><files/></reportDoneResponse>")
    assert code_of(upload(esp_client, auth, report_id, b"x" * 10)) == 5101


def test_a_partner_never_reaches_another_partners_report(esp_client: TestClient, esp_ctx: AppContext,
                                                         auth: dict[str, str],
                                                         sessions: sessionmaker[Session]) -> None:
    report_id = submit(esp_client, auth)
    other = make_partner(sessions, "Other Chat Co")
    them = basic(other.username, other.password)
    assert code_of(upload(esp_client, them, report_id, png_bytes(seed=3))) == 5001
    assert list(esp_ctx.blobs.all_names()) == []
    details = (f"<fileDetails><reportId>{report_id}</reportId><fileId>{'0' * 32}</fileId>"
               "</fileDetails>").encode()
    assert code_of(esp_client.post("/ispws/fileinfo", content=details, headers={**them, **XML}).text) == 5001
    for path in ("/ispws/finish", "/ispws/retract"):
        assert code_of(esp_client.post(path, data={"id": str(report_id)}, headers=them).text) == 5001
    # still open for its owner
    done = esp_client.post("/ispws/finish", data={"id": str(report_id)}, headers=auth)
    assert code_of(done.text) == 0


def test_unknown_report_and_file(esp_client: TestClient, auth: dict[str, str]) -> None:
    assert code_of(upload(esp_client, auth, 123456789, png_bytes())) == 5001
    finish = esp_client.post("/ispws/finish", data={"id": "123456789"}, headers=auth)
    assert "<reportDoneResponse><responseCode>5001</responseCode><reportId>123456789</reportId>" in finish.text
    report_id = submit(esp_client, auth)
    details = f"<fileDetails><reportId>{report_id}</reportId><fileId>{'a' * 32}</fileId></fileDetails>"
    response = esp_client.post("/ispws/fileinfo", content=details.encode(), headers={**auth, **XML})
    assert code_of(response.text) == 5002
    bad = esp_client.post("/ispws/finish", data={"id": "abc"}, headers=auth)
    assert code_of(bad.text) == 4000 and "<reportId>0</reportId>" in bad.text


def test_reports_expire(esp_client: TestClient, esp_ctx: AppContext, auth: dict[str, str]) -> None:
    from datetime import timedelta

    from tipline import clock
    from tipline.esp import service

    report_id = submit(esp_client, auth)
    assert code_of(upload(esp_client, auth, report_id, png_bytes(seed=5))) == 0
    clock.advance(timedelta(hours=23, minutes=59).total_seconds())
    # a change at 23:59 keeps it open for one more hour after that change
    assert code_of(upload(esp_client, auth, report_id, png_bytes(seed=6))) == 0
    clock.advance(timedelta(minutes=59).total_seconds())
    assert code_of(upload(esp_client, auth, report_id, png_bytes(seed=8))) == 0
    # An hour after the last change (and the minute by which its recorded time may lag).
    clock.advance(timedelta(hours=1, minutes=1, seconds=1).total_seconds())
    finish = esp_client.post("/ispws/finish", data={"id": str(report_id)}, headers=auth)
    assert code_of(finish.text) == 5001
    assert service.purge_expired(esp_ctx) == 1
    assert list(esp_ctx.blobs.all_names()) == []


def test_file_details_keep_a_report_open_too(esp_client: TestClient, auth: dict[str, str]) -> None:
    from datetime import timedelta

    from tipline import clock

    report_id = submit(esp_client, auth)
    file_id = re.search(r"<fileId>([0-9a-f]{32})</fileId>",  # type: ignore[union-attr]
                        upload(esp_client, auth, report_id, png_bytes(seed=9))).group(1)
    details = (f"<fileDetails><reportId>{report_id}</reportId><fileId>{file_id}</fileId>"
               "<fileViewedByEsp>true</fileViewedByEsp></fileDetails>").encode()

    def file_details() -> int:
        return code_of(esp_client.post("/ispws/fileinfo", content=details, headers={**auth, **XML}).text)

    # Details sent within a minute of a change are not a new change of record; later ones are.
    clock.advance(timedelta(seconds=30).total_seconds())
    assert file_details() == 0
    clock.advance(timedelta(hours=23, minutes=29).total_seconds())
    assert file_details() == 0  # 23:59 after opening: one more hour from here
    clock.advance(timedelta(minutes=59).total_seconds())
    assert file_details() == 0
    clock.advance(timedelta(hours=1, minutes=1, seconds=1).total_seconds())
    assert file_details() == 5001


def test_xsd_is_our_own_schema(esp_client: TestClient, auth: dict[str, str]) -> None:
    from tipline.esp.xml import parse

    response = esp_client.get("/ispws/xsd", headers=auth)
    assert response.status_code == 200
    root = parse(response.content)
    assert root.name == "xs:schema"
    assert "Written by the Tipline project" in response.text
    assert '<xs:element name="incidentSummary" minOccurs="1" maxOccurs="1">' in response.text


def test_a_report_number_drawn_twice_is_drawn_again(esp_client: TestClient, auth: dict[str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Report numbers are random; a number already taken is skipped (the unique index says
    so), never reused and never an endless retry."""
    first = submit(esp_client, auth)
    low = service.REPORT_ID_RANGE[0]
    draws = iter([first - low, first - low, 12_345])
    monkeypatch.setattr(service.secrets, "randbelow", lambda _n: next(draws))
    second = submit(esp_client, auth)
    assert second == low + 12_345 != first
    assert next(draws, None) is None  # exactly three draws: two collisions, then a free number
