"""The JSON API: same schema, same rules, clear problem bodies."""

from __future__ import annotations

import hashlib
import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.helpers import png_bytes, report_json
from tipline.evidence.models import EvidenceFile
from tipline.reports.models import Report


def reports_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.execute(select(func.count()).select_from(Report)).scalar_one())


def test_json_report_then_follow_up_with_reply_and_file(client: TestClient, sessions: sessionmaker[Session]) -> None:
    image = png_bytes(seed=3)
    created = client.post(
        "/api/v1/reports",
        files=[("report", (None, json.dumps(report_json()), "application/json")),
               ("files", ("profile.png", image, "image/png"))],
    )
    assert created.status_code == 201, created.text
    receipt = created.json()
    assert receipt["status"] == "received" and receipt["files"] == 1
    assert receipt["reference"].startswith("TL-")

    signed = client.post("/api/v1/followup/session", json={"codename": receipt["codename"].upper()})
    assert signed.status_code == 200
    auth = {"Authorization": f"Bearer {signed.json()['token']}"}

    state = client.get("/api/v1/followup", headers=auth).json()
    assert state["reference"] == receipt["reference"]
    assert state["status"] == "received"
    assert [f["name"] for f in state["files"]] == ["profile.png"]

    reply = client.post("/api/v1/followup/messages", headers=auth, json={"body": "He wrote again today."})
    assert reply.status_code == 201
    more = png_bytes(seed=4)
    added = client.post("/api/v1/followup/files", headers=auth,
                        files=[("files", ("second.png", more, "image/png"))])
    assert added.status_code == 201 and added.json() == {"files_added": 1}

    state = client.get("/api/v1/followup", headers=auth).json()
    assert [m["body"] for m in state["messages"]] == ["He wrote again today.", "(files added)"]
    assert [m["author"] for m in state["messages"]] == ["reporter", "reporter"]
    assert sorted(f["name"] for f in state["files"]) == ["profile.png", "second.png"]
    with sessions() as session:
        digests = set(session.execute(select(EvidenceFile.sha256)).scalars())
    assert digests == {hashlib.sha256(image).hexdigest(), hashlib.sha256(more).hexdigest()}

    assert client.delete("/api/v1/followup/session", headers=auth).status_code == 204
    assert client.get("/api/v1/followup", headers=auth).status_code == 404


def test_plain_json_report(client: TestClient, sessions: sessionmaker[Session]) -> None:
    response = client.post("/api/v1/reports", json=report_json(immediate_danger=True))
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    with sessions() as session:
        report = session.execute(select(Report)).scalar_one()
        assert report.immediate_danger is True
        assert report.source.value == "public_api"


def test_malformed_json(client: TestClient, sessions: sessionmaker[Session]) -> None:
    response = client.post("/api/v1/reports", content=b'{"description": ',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "not valid JSON" in response.json()["detail"]
    assert reports_count(sessions) == 0


def test_missing_and_unknown_fields_are_named(client: TestClient, sessions: sessionmaker[Session]) -> None:
    body = report_json()
    del body["description"]
    body["incident_types"] = ["sextortion", "teleportation"]
    body["favourite_colour"] = "blue"
    response = client.post("/api/v1/reports", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors["description"] == "This is required."
    assert errors["incident_types"].startswith("Choose one of:")
    assert errors["favourite_colour"] == "This field is not part of a report."
    assert reports_count(sessions) == 0


def test_over_long_description(client: TestClient, sessions: sessionmaker[Session]) -> None:
    response = client.post("/api/v1/reports", json=report_json(description="a" * 20_001))
    assert response.status_code == 422
    assert "at most 20000 characters" in response.json()["errors"]["description"]
    assert reports_count(sessions) == 0


def test_wrong_content_type(client: TestClient) -> None:
    response = client.post("/api/v1/reports", content=b"description=hi",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 422
    assert "application/json" in response.json()["detail"]


def test_multipart_with_bad_file_stores_nothing(client: TestClient, ctx, sessions) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/reports",
        files=[("report", (None, json.dumps(report_json()))),
               ("files", ("run.exe", b"MZ" + b"\x90" * 1000, "application/octet-stream"))],
    )
    assert response.status_code == 422
    assert "not accepted" in response.json()["errors"]["files"]
    assert reports_count(sessions) == 0
    assert list(ctx.blobs.all_names()) == []


def test_openapi_documents_the_report_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/reports" in spec["paths"]
    body = spec["paths"]["/api/v1/reports"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/ReportCreate"
    schema = spec["components"]["schemas"]["ReportCreate"]
    assert set(schema["required"]) == {"reporter_role", "incident_types", "description"}
    assert "/api/v1/followup/session" in spec["paths"]
