"""The reporter's follow-up page: codename sign-in, status, questions, replies, files."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.helpers import codename_from, csrf_token, png_bytes, reference_from, report_fields
from tests.intake.test_report_form import multipart
from tipline.db import transaction
from tipline.messaging import service as messaging
from tipline.messaging.enums import Author
from tipline.messaging.models import ReportMessage
from tipline.reports import service as reports
from tipline.reports.states import ReportStatus


def file_report(client: TestClient) -> tuple[str, str]:
    page = client.get("/report")
    response = client.post("/report", files=multipart(report_fields(csrf_token=csrf_token(page.text))))
    assert response.status_code == 201
    return reference_from(response.text), codename_from(response.text)


def sign_in(client: TestClient, codename: str):  # type: ignore[no-untyped-def]
    page = client.get("/followup")
    return client.post("/followup", data={"codename": codename, "csrf_token": csrf_token(page.text)})


def test_reporter_reads_a_question_and_answers(client: TestClient, ctx, sessions: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    reference, codename = file_report(client)
    with transaction(ctx.sessions) as session:
        report = reports.get_by_reference(session, reference)
        messaging.post_message(session, ctx.keys, report_id=report.id, author=Author.staff,
                               author_label="Tipline team", body="Which app was it on?",
                               actor="analyst:1", max_chars=1000)
        reports.change_status(session, report, ReportStatus.in_review, actor="analyst:1")

    # Codenames are forgiving about case, spaces and hyphens.
    signed = sign_in(client, "  " + codename.upper().replace(" ", "-") + " ")
    assert signed.status_code == 200  # followed the 303 to the report page
    assert "Your report " + reference in signed.text
    assert 'id="status">Under review<' in signed.text
    assert "Which app was it on?" in signed.text
    assert "Tipline team" in signed.text

    reply = client.post("/followup/report", files=multipart(
        {"csrf_token": csrf_token(signed.text), "body": "It was ExampleChat."},
        [("evidence.png", png_bytes(seed=9), "image/png")]))
    assert reply.status_code == 200
    assert "your message and files were added" in reply.text
    assert "It was ExampleChat." in reply.text
    assert "evidence.png" in reply.text
    with sessions() as session:
        stored = session.execute(select(ReportMessage.body_sealed)).scalars().all()
    assert all(b"ExampleChat" not in body for body in stored), "messages must be stored encrypted"


def test_wrong_and_unknown_codenames_get_the_same_answer(client: TestClient) -> None:
    _reference, codename = file_report(client)
    words = codename.split()
    wrong = sign_in(client, " ".join([*words[:-1], "zebra" if words[-1] != "zebra" else "apple"]))
    unknown = sign_in(client, "nothing like a codename at all")
    assert wrong.status_code == unknown.status_code == 404
    assert "That codename does not match a report." in wrong.text
    assert wrong.text.replace(csrf_token(wrong.text), "") == unknown.text.replace(csrf_token(unknown.text), "")
    assert "tl_followup" not in client.cookies


def test_codename_attempts_are_rate_limited(client: TestClient) -> None:
    statuses = [sign_in(client, f"guess number {i}").status_code for i in range(12)]
    assert statuses[:10] == [404] * 10
    assert statuses[10:] == [429, 429]
    assert "Too many attempts" in sign_in(client, "one more").text


def test_follow_up_page_needs_a_session(client: TestClient) -> None:
    page = client.get("/followup/report")
    assert page.status_code == 401
    assert "sign in again" in page.text


def test_empty_reply_is_refused(client: TestClient, sessions: sessionmaker[Session]) -> None:
    _reference, codename = file_report(client)
    signed = sign_in(client, codename)
    reply = client.post("/followup/report", files=multipart(
        {"csrf_token": csrf_token(signed.text), "body": "   "}))
    assert reply.status_code == 422
    assert "Write a message or choose a file" in reply.text
    with sessions() as session:
        assert session.execute(select(ReportMessage)).first() is None


def test_reply_with_forged_csrf_is_refused(client: TestClient, sessions: sessionmaker[Session]) -> None:
    _reference, codename = file_report(client)
    sign_in(client, codename)
    reply = client.post("/followup/report", files=multipart({"csrf_token": "x", "body": "hello"}))
    assert reply.status_code == 403
    with sessions() as session:
        assert session.execute(select(ReportMessage)).first() is None


def test_sign_out_ends_the_session(client: TestClient) -> None:
    _reference, codename = file_report(client)
    signed = sign_in(client, codename)
    out = client.post("/followup/signout", data={"csrf_token": csrf_token(signed.text)})
    assert out.status_code == 200
    assert client.get("/followup/report").status_code == 401
