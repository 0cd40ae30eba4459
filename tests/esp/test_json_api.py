"""The JSON twin under /api/v1/partner: same model, same checker, same codes as /ispws."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.esp.conftest import GOLDEN, basic, make_partner
from tests.helpers import png_bytes
from tipline.app import create_app
from tipline.context import AppContext
from tipline.esp import json_api, schema
from tipline.esp.models import EspFile, EspReport, EspReportState
from tipline.esp.models import Partner as PartnerRow
from tipline.esp.service import Credentials
from tipline.esp.xml import EspError, read_document
from tipline.evidence import service as evidence
from tipline.reports.enums import Source
from tipline.reports.models import Report
from tipline.settings import Settings

BASE = "/api/v1/partner"
XML = {"Content-Type": "text/xml; charset=utf-8"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, "partner")
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def ctx(client: TestClient) -> AppContext:
    found: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    return found


def golden(name: str) -> dict[str, Any]:
    """A golden XML document as the JSON the checker makes of it: the JSON model."""
    if "fileinfo" in name:
        return read_document((GOLDEN / name).read_bytes(), "fileDetails", schema.FILE_DETAILS)
    return read_document((GOLDEN / name).read_bytes(), "report", schema.REPORT)


def minimal() -> dict[str, Any]:
    return {
        "incidentSummary": {"incidentType": "Online Enticement of Children for Sexual Acts",
                            "incidentDateTime": "2026-01-02T03:04:05Z"},
        "reporter": {"reportingPerson": {"email": [{"value": "reports@example.com", "@type": "Business"}]}},
        "personOrUserReported": [{"screenName": "quiet_owl",
                                  "ipCaptureEvent": [{"ipAddress": "81.2.69.160", "eventName": "Login"}]}],
    }


def problem_of(response: Any, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status, body
    return body


def submit(client: TestClient, auth: dict[str, str], document: dict[str, Any], **headers: str) -> Any:
    return client.post(f"{BASE}/reports", json=document, headers={**auth, **headers})


def test_status_and_wrong_credentials(client: TestClient, auth: dict[str, str], partner: Credentials) -> None:
    assert client.get(f"{BASE}/status", headers=auth).json() == {"remoteUser": partner.username,
                                                                 "remoteIp": "testclient"}
    for headers in ({}, basic(partner.username, "wrong"), {"Authorization": "Basic !!!"}):
        response = client.get(f"{BASE}/status", headers=headers)
        problem_of(response, 401, 4000)
        assert response.headers["www-authenticate"] == json_api.REALM


def test_the_json_model_is_the_xml_model(client: TestClient, auth: dict[str, str],
                                         sessions: sessionmaker[Session]) -> None:
    """The checked JSON of the client's fullest XML report, sent as JSON, is stored as is."""
    document = golden("client_submit_full.xml")
    response = submit(client, auth, document)
    assert response.status_code == 201, response.text
    report_id = response.json()["reportId"]
    xml = client.post("/ispws/submit", content=(GOLDEN / "client_submit_full.xml").read_bytes(),
                      headers={**auth, **XML})
    assert "<responseCode>0</responseCode>" in xml.text
    with sessions() as session:
        stored = session.execute(select(EspReport.document)).scalars().all()
        by_json = session.execute(select(EspReport.document)
                                  .where(EspReport.report_id == report_id)).scalar_one()
    assert len(stored) == 2 and stored[0] == stored[1] == by_json == document


@pytest.mark.parametrize(("change", "detail"), [
    (lambda d: d["incidentSummary"].update(incidentType="Something else"),
     "Validation failed: report/incidentSummary/incidentType has the unknown value “Something else”."),
    (lambda d: d.pop("incidentSummary"),
     "Validation failed: report is missing its required element incidentSummary."),
    (lambda d: d["incidentSummary"].update(incidentDateTime="2999-01-01T00:00:00Z"),
     "Validation failed: report/incidentSummary/incidentDateTime is in the future."),
    (lambda d: d.update(colour="blue"),
     "Validation failed: report/colour is not an element allowed in report."),
    (lambda d: d["incidentSummary"].update(platform="x" * 257),
     "Validation failed: report/incidentSummary/platform is longer than 256 characters (257)."),
    (lambda d: d["personOrUserReported"][0]["ipCaptureEvent"][0].update(ipAddress="1.2.3"),
     "Validation failed: report/personOrUserReported/ipCaptureEvent/ipAddress “1.2.3” is not an IP address."),
    (lambda d: d["reporter"]["reportingPerson"].update(age=12.5),
     "Validation failed: report/reporter/reportingPerson/age must be a whole number, not “12.5”."),
    (lambda d: d.update(additionalInfo=["one", "two"]),
     "Validation failed: report/additionalInfo may appear only once."),
    (lambda d: d["reporter"]["reportingPerson"].pop("email"),
     "Validation failed: report/reporter/reportingPerson needs an email."),
])
def test_refusals_match_the_xml_checker(client: TestClient, auth: dict[str, str],
                                        sessions: sessionmaker[Session], change: Any, detail: str) -> None:
    document = minimal()
    change(document)
    body = problem_of(submit(client, auth, document), 400, 4100)
    assert body["detail"] == detail
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(EspReport)).scalar_one() == 0


def test_bodies_that_are_not_json_documents(client: TestClient, auth: dict[str, str]) -> None:
    url = f"{BASE}/reports"
    problem_of(client.post(url, content=b"<report/>", headers={**auth, **XML}), 400, 4000)
    problem_of(client.post(url, content=b"{nope", headers={**auth, "Content-Type": "application/json"}),
               400, 4110)
    problem_of(client.post(url, json=[1, 2], headers=auth), 400, 4100)
    deep = b"[" * 100_000 + b"]" * 100_000
    problem_of(client.post(url, content=deep, headers={**auth, "Content-Type": "application/json"}), 400, 4110)
    problem_of(client.post(url, content=b" " * (json_api.MAX_JSON_BYTES + 1),
                           headers={**auth, "Content-Type": "application/json"}), 400, 4000)


def test_full_flow(client: TestClient, ctx: AppContext, auth: dict[str, str],
                   sessions: sessionmaker[Session]) -> None:
    report_id = submit(client, auth, minimal()).json()["reportId"]
    image = png_bytes(seed=3)
    uploaded = client.post(f"{BASE}/reports/{report_id}/files", headers=auth,
                           files={"file": ("IMG_0001.png", image, "image/png")})
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["fileId"]
    assert uploaded.json() == {"reportId": report_id, "fileId": file_id, "md5": hashlib.md5(image).hexdigest()}

    details = golden("client_fileinfo_full.xml")
    details.pop("reportId")
    details.pop("fileId")
    saved = client.post(f"{BASE}/reports/{report_id}/files/{file_id}/details", json=details, headers=auth)
    assert saved.json() == {"reportId": report_id, "fileId": file_id}, saved.text

    done = client.post(f"{BASE}/reports/{report_id}/finish", headers=auth)
    assert done.json() == {"reportId": report_id, "fileIds": [file_id]}
    with sessions() as session:
        esp = session.execute(select(EspReport).where(EspReport.report_id == report_id)).scalar_one()
        assert esp.state == EspReportState.finished
        report = session.get(Report, esp.tipline_report_id)
        assert report is not None and report.source == Source.partner
        assert report.incident_types == ["image_pressure"]
        assert "quiet_owl" in report.suspect["usernames"]
        row = session.execute(select(EspFile)).scalar_one()
        assert row.viewed_by_esp is True and row.needs_legal_basis is False
        assert evidence.verify_vault(session, ctx.blobs, ctx.keys).healthy

    problem_of(client.post(f"{BASE}/reports/{report_id}/finish", headers=auth), 409, 5102)
    problem_of(client.post(f"{BASE}/reports/{report_id}/retract", headers=auth), 409, 5102)
    late = client.post(f"{BASE}/reports/{report_id}/files", headers=auth,
                       files={"file": ("b.png", image, "image/png")})
    problem_of(late, 409, 5102)
    assert esp.tipline_report_id is not None
    with sessions() as session:
        assert len(evidence.list_for_report(session, esp.tipline_report_id)) == 1


def test_file_details_refusals(client: TestClient, auth: dict[str, str]) -> None:
    report_id = submit(client, auth, minimal()).json()["reportId"]
    file_id = client.post(f"{BASE}/reports/{report_id}/files", headers=auth,
                          files={"file": ("a.png", png_bytes(seed=4), "image/png")}).json()["fileId"]
    url = f"{BASE}/reports/{report_id}/files/{file_id}/details"
    problem_of(client.post(url, json={"reportId": report_id + 1}, headers=auth), 400, 4000)
    body = problem_of(client.post(url, json={"fileRelevance": "Maybe"}, headers=auth), 400, 4100)
    assert body["detail"] == "Validation failed: fileDetails/fileRelevance has the unknown value “Maybe”."
    unknown = f"{BASE}/reports/{report_id}/files/{'0' * 32}/details"
    problem_of(client.post(unknown, json={"fileViewedByEsp": True}, headers=auth), 404, 5002)
    ok = client.post(url, json={"fileViewedByEsp": True, "reportId": str(report_id)}, headers=auth)
    assert ok.status_code == 200, ok.text


def test_idempotent_on_the_partners_reference(client: TestClient, auth: dict[str, str],
                                              sessions: sessionmaker[Session]) -> None:
    first = submit(client, auth, minimal(), **{"Idempotency-Key": "case-0001"})
    again = submit(client, auth, minimal(), **{"Idempotency-Key": "case-0001"})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["reportId"] == again.json()["reportId"]
    assert again.json() == {"reportId": first.json()["reportId"], "partnerReference": "case-0001",
                            "created": False}
    by_field = submit(client, auth, {**minimal(), "partnerReference": "case-0001"})
    assert by_field.status_code == 200 and by_field.json()["reportId"] == first.json()["reportId"]

    other = copy.deepcopy(minimal())
    other["incidentSummary"]["platform"] = "PixelPlay"
    body = problem_of(submit(client, auth, other, **{"Idempotency-Key": "case-0001"}), 409, 4000)
    assert body["reportId"] == first.json()["reportId"]
    problem_of(submit(client, auth, {**minimal(), "partnerReference": "case-0002"},
                      **{"Idempotency-Key": "case-0003"}), 400, 4000)
    problem_of(submit(client, auth, {**minimal(), "partnerReference": 7}), 400, 4100)

    # Another partner's identical reference is its own; a finished report keeps answering.
    someone = make_partner(sessions, "Other Video App")
    theirs = submit(client, basic(someone.username, someone.password), minimal(), **{"Idempotency-Key": "case-0001"})
    assert theirs.status_code == 201 and theirs.json()["reportId"] != first.json()["reportId"]
    client.post(f"{BASE}/reports/{first.json()['reportId']}/finish", headers=auth)
    after = submit(client, auth, minimal(), **{"Idempotency-Key": "case-0001"})
    assert after.status_code == 200 and after.json()["reportId"] == first.json()["reportId"]
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(EspReport)).scalar_one() == 2

    # A retracted report releases its reference.
    retracted = submit(client, auth, minimal(), **{"Idempotency-Key": "case-0009"}).json()["reportId"]
    client.post(f"{BASE}/reports/{retracted}/retract", headers=auth)
    fresh = submit(client, auth, minimal(), **{"Idempotency-Key": "case-0009"})
    assert fresh.status_code == 201 and fresh.json()["reportId"] != retracted


def test_another_partners_reports_are_not_found(client: TestClient, auth: dict[str, str],
                                                sessions: sessionmaker[Session]) -> None:
    report_id = submit(client, auth, minimal()).json()["reportId"]
    someone = make_partner(sessions, "Other Video App")
    theirs = basic(someone.username, someone.password)
    for path in ("finish", "retract"):
        problem_of(client.post(f"{BASE}/reports/{report_id}/{path}", headers=theirs), 404, 5001)
    problem_of(client.post(f"{BASE}/reports/{report_id}/files", headers=theirs,
                           files={"file": ("a.png", png_bytes(seed=5), "image/png")}), 404, 5001)
    assert client.post(f"{BASE}/reports/{report_id}/retract", headers=auth).json() == {"reportId": report_id}
    problem_of(client.post(f"{BASE}/reports/{report_id}/finish", headers=auth), 409, 5101)
    problem_of(client.post(f"{BASE}/reports/12x/finish", headers=auth), 400, 4000)
    problem_of(client.post(f"{BASE}/reports/{10**19}/finish", headers=auth), 400, 4000)
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(EspFile)).scalar_one() == 0


def test_uploads_that_are_refused_leave_nothing(client: TestClient, ctx: AppContext, auth: dict[str, str]) -> None:
    report_id = submit(client, auth, minimal()).json()["reportId"]
    url = f"{BASE}/reports/{report_id}/files"
    problem_of(client.post(url, headers=auth, files={"note": (None, "no file")}), 400, 4000)
    two = [("file", ("a.png", png_bytes(seed=6), "image/png")), ("file", ("b.png", png_bytes(seed=7), "image/png"))]
    problem_of(client.post(url, headers=auth, files=two), 400, 4000)
    problem_of(client.post(url, headers={**auth, "Content-Type": "text/plain"}, content=b"x"), 400, 1111)
    assert not [p for p in ctx.blobs.root.rglob("*") if p.is_file() and "tmp" not in p.parts]


def test_openapi_documents_the_twin(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) >= {f"{BASE}/status", f"{BASE}/reports", f"{BASE}/reports/{{report_id}}/files",
                          f"{BASE}/reports/{{report_id}}/files/{{file_id}}/details",
                          f"{BASE}/reports/{{report_id}}/finish", f"{BASE}/reports/{{report_id}}/retract"}
    submit_op = paths[f"{BASE}/reports"]["post"]
    body = submit_op["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["incidentSummary", "reporter"]
    assert "partnerReference" in body["properties"]
    assert submit_op["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("ReportOpened")
    assert submit_op["responses"]["409"]["content"]["application/problem+json"]["schema"]["$ref"].endswith("Problem")
    assert "HTTPBasic" in spec["components"]["securitySchemes"]


def test_json_to_node_rejects_objects_where_values_belong() -> None:
    with pytest.raises(EspError, match="must be a single value"):
        json_api.to_node("report", schema.REPORT, {**minimal(), "additionalInfo": {"value": {"a": 1}}})


def test_a_retry_racing_the_first_request_opens_one_report(esp_ctx: AppContext, partner: Credentials,
                                                           sessions: sessionmaker[Session]) -> None:
    """Both calls land in one group-commit batch: the second must still see the first."""
    import asyncio
    import threading

    from tipline.esp import service

    with sessions() as session:
        partner_id = session.execute(select(PartnerRow.id)).scalar_one()
    document = read_document((GOLDEN / "client_submit_minimal.xml").read_bytes(), "report", schema.REPORT)

    async def twice() -> list[tuple[int, bool]]:
        return list(await asyncio.gather(*(service.open_report(esp_ctx, partner_id, document, "retry-1")
                                           for _ in range(3))))

    # In a thread of its own: other tests (Playwright) may leave a loop running in this one.
    results: list[tuple[int, bool]] = []
    runner = threading.Thread(target=lambda: results.extend(asyncio.run(twice())))
    runner.start()
    runner.join(timeout=60)
    assert len({report_id for report_id, _created in results}) == 1
    assert sorted(created for _id, created in results) == [False, False, True]
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(EspReport)).scalar_one() == 1
