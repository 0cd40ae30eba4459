"""The public report form over HTTP: what a reporter meets, good input and bad."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.helpers import codename_from, csrf_token, png_bytes, reference_from, report_fields
from tipline.audit.models import AuditEntry
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.reports.models import Report


def multipart(fields: dict[str, Any], files: list[tuple[str, bytes, str]] = ()) -> list[Any]:  # type: ignore[assignment]
    parts: list[Any] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            parts.append((name, (None, item)))
    for filename, content, media_type in files:
        parts.append(("files", (filename, content, media_type)))
    return parts


def submit(client: TestClient, files: list[tuple[str, bytes, str]] = (), **overrides: Any):  # type: ignore[no-untyped-def,assignment]
    page = client.get("/report")
    fields = report_fields(csrf_token=csrf_token(page.text), **overrides)
    return client.post("/report", files=multipart(fields, files))


def count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_form_files_a_report_with_a_screenshot(client: TestClient, sessions: sessionmaker[Session]) -> None:
    image = png_bytes(seed=7)
    response = submit(client, files=[("chat.png", image, "image/png")])
    assert response.status_code == 201
    reference = reference_from(response.text)
    codename = codename_from(response.text)
    assert len(codename.split()) >= 7
    assert "Do not pay" in response.text or "do not pay" in response.text
    assert "Save everything" in response.text
    assert "What happens next" in response.text
    assert "/where-to-report/GB" in response.text
    # Where else to report, for the reporter's country, straight from the directory.
    assert "CEOP" in response.text or "Internet Watch Foundation" in response.text
    assert "Report the account to the app or website" in response.text
    assert response.headers["cache-control"] == "no-store"
    with sessions() as session:
        report = session.execute(select(Report).where(Report.reference == reference)).scalar_one()
        assert report.incident_types == ["sextortion"]
        assert report.sextortion == {"demands": ["money"], "deadline": "Friday evening"}
        assert report.anonymous is True and report.contact_sealed is None
        # Only a hash of the codename is kept.
        assert report.codename_hash and codename not in report.codename_hash
        evidence = session.execute(select(EvidenceFile)).scalar_one()
        assert evidence.sha256 == hashlib.sha256(image).hexdigest()
        assert evidence.md5 == hashlib.md5(image).hexdigest()
        assert evidence.media_type == "image/png"
        events = session.execute(select(CustodyEvent)).scalars().all()
        assert [e.action for e in events] == ["received"]


def test_contact_details_are_sealed(client: TestClient, sessions: sessionmaker[Session]) -> None:
    response = submit(client, anonymous="no", contact_name="Robin Example",
                      contact_email="robin@example.org")
    assert response.status_code == 201
    with sessions() as session:
        report = session.execute(select(Report)).scalar_one()
        assert report.anonymous is False
        assert report.contact_sealed is not None
        assert b"Robin" not in report.contact_sealed


def test_missing_required_answers_keep_what_was_typed(client: TestClient, sessions: sessionmaker[Session]) -> None:
    response = submit(client, description="", reporter_role="", incident_types=[])
    assert response.status_code == 422
    assert "Some answers need another look" in response.text
    assert response.text.count("This is required.") >= 2
    assert "Choose at least 1." in response.text
    # What the person typed is still in the form.
    assert 'value="ExampleChat"' in response.text
    assert "shadowfox_99" in response.text
    assert count(sessions, Report) == 0
    assert count(sessions, AuditEntry) == 0


def test_over_long_field_is_refused(client: TestClient, sessions: sessionmaker[Session]) -> None:
    response = submit(client, platform="x" * 501)
    assert response.status_code == 422
    assert "at most 500 characters" in response.text
    assert count(sessions, Report) == 0


def test_future_date_and_bad_url_are_refused(client: TestClient, sessions: sessionmaker[Session]) -> None:
    response = submit(client, happened_on="2999-01-01", urls="not a link at all")
    assert response.status_code == 422
    assert "The date is in the future." in response.text
    assert "does not look like a web address" in response.text
    assert count(sessions, Report) == 0


def test_wrong_file_type_is_refused_and_nothing_stored(client: TestClient, ctx, sessions) -> None:  # type: ignore[no-untyped-def]
    zipped = b"PK\x03\x04" + b"\x00" * 600
    response = submit(client, files=[("chat.png", png_bytes(), "image/png"),
                                     ("archive.png", zipped, "image/png")])
    assert response.status_code == 422
    assert "“archive.png” is a file of type application/zip" in response.text
    assert "files you chose were not kept" in response.text
    assert 'value="ExampleChat"' in response.text
    assert count(sessions, Report) == 0
    assert count(sessions, EvidenceFile) == 0
    assert list(ctx.blobs.all_names()) == []


def test_oversize_file_is_refused(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tipline.app import create_app

    small = settings.model_copy(update={"max_file_bytes": 4096})
    with TestClient(create_app(small, "all")) as client:
        response = submit(client, files=[("big.png", png_bytes(noise=True), "image/png")])
        assert response.status_code == 422
        assert "“big.png” is larger than the limit" in response.text
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        assert list(ctx.blobs.all_names()) == []
        assert list(ctx.blobs.tmp.iterdir()) == []


def test_too_many_files_is_refused(client: TestClient, ctx, sessions) -> None:  # type: ignore[no-untyped-def]
    files = [(f"s{i}.png", png_bytes(seed=i, size=(20, 20)), "image/png") for i in range(11)]
    response = submit(client, files=files)
    assert response.status_code == 422
    assert "Too many files: you can add at most 10." in response.text
    assert count(sessions, EvidenceFile) == 0
    assert list(ctx.blobs.all_names()) == []


def test_invalid_csrf_is_refused_but_keeps_answers(client: TestClient, sessions: sessionmaker[Session]) -> None:
    client.get("/report")
    fields = report_fields(csrf_token="forged")
    response = client.post("/report", files=multipart(fields, [("a.png", png_bytes(), "image/png")]))
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    assert "shadowfox_99" in response.text
    assert count(sessions, Report) == 0
    assert count(sessions, EvidenceFile) == 0


def test_form_needs_multipart(client: TestClient) -> None:
    page = client.get("/report")
    response = client.post("/report", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 422
    assert "multipart/form-data" in response.text


def test_every_page_has_the_safety_gate_and_quick_exit(client: TestClient) -> None:
    for path in ("/", "/report", "/followup", "/help"):
        page = client.get(path, headers={"accept-language": "en-US,en;q=0.8"})
        assert page.status_code == 200
        assert "Is a child in immediate danger?" in page.text
        assert 'id="quick-exit"' in page.text
        assert "988" in page.text  # US visitors see the crisis line
    uk = client.get("/", headers={"accept-language": "en-GB"})
    assert "988" not in uk.text
