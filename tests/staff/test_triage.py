"""The analyst's day: the queue, a report, its evidence, questions to the reporter."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import codename_from, csrf_token, png_bytes, report_json
from tests.intake.test_report_form import multipart
from tipline.accounts.permissions import Role
from tipline.evidence.models import CustodyEvent
from tipline.reports.models import Report


def file(client: TestClient, **overrides) -> dict:  # type: ignore[no-untyped-def,type-arg]
    import json

    response = client.post("/api/v1/reports", files=[
        ("report", (None, json.dumps(report_json(**overrides)))),
        ("files", ("shot.png", png_bytes(seed=5), "image/png"))])
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def report_id(ctx, reference: str) -> str:  # type: ignore[no-untyped-def]
    with ctx.sessions() as session:
        return str(session.execute(select(Report.id).where(Report.reference == reference)).scalar_one())


def test_queue_sorts_by_priority_with_reasons(client: TestClient, ctx, staff_client) -> None:  # type: ignore[no-untyped-def]
    calm = file(client, child_age_band="16_17", description="A worrying comment.")
    urgent = file(client, immediate_danger=True, incident_types=["sextortion"],
                  sextortion={"demands": ["money"], "deadline": "tonight"})
    analyst = staff_client(Role.analyst)
    page = analyst.get("/staff/queue")
    assert page.status_code == 200
    assert page.text.index(urgent["reference"]) < page.text.index(calm["reference"])
    assert "child in immediate danger" in page.text
    assert "sextortion with a deadline (tonight)" in page.text
    only_api = analyst.get("/staff/queue", params={"source": "public_api", "country": "US"})
    assert urgent["reference"] in only_api.text
    bad = analyst.get("/staff/queue", params={"status": "nonsense"})
    assert bad.status_code == 422 and "Unknown status." in bad.text


def test_claim_reveal_question_and_answer(client: TestClient, ctx, staff_client) -> None:  # type: ignore[no-untyped-def]
    receipt = file(client)
    rid = report_id(ctx, receipt["reference"])
    analyst = staff_client(Role.analyst)
    page = analyst.get(f"/staff/reports/{rid}")
    assert page.status_code == 200
    # The image is offered only as a blurred preview; the original needs a recorded reveal.
    evidence_id = re.search(r'/staff/evidence/([0-9a-f-]+)/preview', page.text).group(1)  # type: ignore[union-attr]
    preview = analyst.get(f"/staff/evidence/{evidence_id}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    assert preview.content != png_bytes(seed=5)
    assert analyst.get(f"/staff/evidence/{evidence_id}/original").status_code == 404
    with ctx.sessions() as session:
        assert [e.action for e in session.execute(select(CustodyEvent)).scalars()] == ["received"]

    claimed = analyst.post(f"/staff/reports/{rid}/claim", data={"csrf_token": csrf_token(page.text)})
    assert "You are now working on this report." in claimed.text
    assert 'id="report-status">in_review<' in claimed.text

    revealed = analyst.post(f"/staff/evidence/{evidence_id}/reveal",
                            data={"csrf_token": csrf_token(page.text), "reason": "confirm the threat"})
    assert revealed.status_code == 200
    grant = re.search(r'original\?grant=([^"]+)"', revealed.text).group(1)  # type: ignore[union-attr]
    original = analyst.get(f"/staff/evidence/{evidence_id}/original", params={"grant": grant.replace("&amp;", "&")})
    assert original.status_code == 200 and original.content == png_bytes(seed=5)
    with ctx.sessions() as session:
        events = session.execute(select(CustodyEvent).order_by(CustodyEvent.at)).scalars().all()
    assert [e.action for e in events] == ["received", "viewed"]
    assert "confirm the threat" in events[1].details

    asked = analyst.post(f"/staff/reports/{rid}/question",
                         data={"csrf_token": csrf_token(page.text), "body": "Do you still have the chat?"})
    assert "Question sent" in asked.text
    analyst.post(f"/staff/reports/{rid}/note", data={"csrf_token": csrf_token(page.text), "body": "internal only"})

    signed = client.post("/api/v1/followup/session", json={"codename": receipt["codename"]})
    auth = {"Authorization": f"Bearer {signed.json()['token']}"}
    seen = client.get("/api/v1/followup", headers=auth).json()
    assert seen["status"] == "under_review"
    assert [m["body"] for m in seen["messages"]] == ["Do you still have the chat?"]
    client.post("/api/v1/followup/messages", headers=auth, json={"body": "Yes, all of it."})
    assert "Yes, all of it." in analyst.get(f"/staff/reports/{rid}").text


def test_classification_is_recorded(client: TestClient, ctx, staff_client) -> None:  # type: ignore[no-untyped-def]
    rid = report_id(ctx, file(client)["reference"])
    analyst = staff_client(Role.analyst)
    page = analyst.get(f"/staff/reports/{rid}")
    done = analyst.post(f"/staff/reports/{rid}/classify",
                        data={"csrf_token": csrf_token(page.text), "types": ["sextortion", "csam"]})
    assert 'id="confirmed-types">sextortion, csam<' in done.text
    bad = analyst.post(f"/staff/reports/{rid}/classify",
                       data={"csrf_token": csrf_token(page.text), "types": ["nonsense"]})
    assert bad.status_code == 422


def test_phone_report_gives_a_codename_that_works(client: TestClient, ctx, staff_client) -> None:  # type: ignore[no-untyped-def]
    analyst = staff_client(Role.analyst)
    form = analyst.get("/staff/reports/new")
    assert form.status_code == 200 and "Enter a report received by phone" in form.text
    saved = analyst.post("/staff/reports/new", files=multipart({
        "csrf_token": csrf_token(form.text), "reporter_role": "parent_carer",
        "incident_types": ["harassment"], "description": "Caller says a stranger keeps messaging her son.",
        "anonymous": "yes"}))
    assert saved.status_code == 201, saved.text[:400]
    codename = codename_from(saved.text)
    with ctx.sessions() as session:
        report = session.execute(select(Report)).scalar_one()
        assert report.source.value == "staff_phone"
    assert client.post("/api/v1/followup/session", json={"codename": codename}).status_code == 200
    missing = analyst.post("/staff/reports/new", files=multipart({
        "csrf_token": csrf_token(form.text), "incident_types": ["harassment"]}))
    assert missing.status_code == 422 and "This is required." in missing.text


def test_assign_and_mark_duplicate(client: TestClient, ctx, staff_client) -> None:  # type: ignore[no-untyped-def]
    first = file(client, suspect={"phones": ["+1 202 555 0142"]})
    second = file(client, suspect={"phones": ["(202) 555-0142"]})
    first_id, second_id = report_id(ctx, first["reference"]), report_id(ctx, second["reference"])
    analyst = staff_client(Role.analyst)
    page = analyst.get(f"/staff/reports/{second_id}")
    assert first["reference"] in page.text  # related through the phone number
    mine = re.search(r'<option value="([0-9a-f-]+)">Test analyst</option>', page.text).group(1)  # type: ignore[union-attr]
    assigned = analyst.post(f"/staff/reports/{second_id}/assign",
                            data={"csrf_token": csrf_token(page.text), "assignee": mine})
    assert "Assignment saved." in assigned.text
    assert second["reference"] in analyst.get("/staff/queue", params={"assigned": "me"}).text
    marked = analyst.post(f"/staff/reports/{second_id}/duplicate",
                          data={"csrf_token": csrf_token(page.text), "body": first_id})
    assert "Marked as a duplicate." in marked.text
    assert 'id="report-status">duplicate<' in marked.text
    assert second["reference"] not in analyst.get("/staff/queue").text


def test_sla_timer_turns_red_when_overdue(client: TestClient, ctx, staff_client) -> None:  # type: ignore[no-untyped-def]
    from tipline import clock

    urgent = file(client, immediate_danger=True)
    analyst = staff_client(Role.analyst)
    fresh = analyst.get("/staff/queue")
    assert urgent["reference"] in fresh.text and "overdue" not in fresh.text
    clock.advance(2 * 3600)  # a child in danger must be triaged within the hour
    assert '<span class="overdue">overdue by 1 h</span>' in analyst.get("/staff/queue").text
