"""Referral to agencies and the agency's follow-up, as analysts, officers and the reporter see it."""

from __future__ import annotations

import json
import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.cases.conftest import World, post, refer
from tests.helpers import codename_from, csrf_token, reference_from, report_fields
from tests.intake.test_report_form import multipart
from tests.messaging.test_followup import sign_in as reporter_sign_in
from tests.staff.conftest import make_agency
from tipline.accounts.permissions import Role
from tipline.audit import service as audit
from tipline.audit.models import AuditEntry
from tipline.cases.models import CaseEvent, Referral, ReferralStatus
from tipline.evidence.models import EvidenceFile
from tipline.reports.models import Report
from tipline.reports.states import ReportStatus


def referral_for(ctx, report_id: uuid.UUID, agency_id: uuid.UUID) -> Referral:  # type: ignore[no-untyped-def]
    with ctx.sessions() as session:
        return session.execute(select(Referral).where(
            Referral.report_id == report_id, Referral.agency_id == agency_id)).scalar_one()


def status_of(ctx, report_id: uuid.UUID) -> Report:  # type: ignore[no-untyped-def]
    with ctx.sessions() as session:
        report = session.get(Report, report_id)
        assert report is not None
        return report


def test_the_form_suggests_agencies_from_the_childs_place(staff_client, world: World) -> None:  # type: ignore[no-untyped-def]
    analyst = staff_client(Role.analyst)
    page = analyst.get(f"/staff/reports/{world.report_id}/referrals")
    assert page.status_code == 200
    # Suggested agencies come first, with their reason filled in; the far-away one last.
    assert page.text.index("Example Ohio Police Unit") < page.text.index("Elsewhere Police")
    assert f'id="agency-{world.police}" checked' in page.text
    assert f'id="agency-{world.elsewhere}" checked' not in page.text
    assert "Ohio" in page.text.split(f'id="reason-{world.police}"')[1].split(">")[0]


def test_analyst_refers_to_police_and_child_welfare(staff_client, ctx, world: World) -> None:  # type: ignore[no-untyped-def]
    analyst = staff_client(Role.analyst)
    done = refer(analyst, world.report_id, {world.police: "Child lives in Ohio",
                                            world.welfare: "The child may need protection"})
    assert done.status_code == 200 and "Referred." in done.text
    assert "Example Ohio Children Services" in done.text
    report = status_of(ctx, world.report_id)
    assert report.status == ReportStatus.referred and report.referred_at is not None
    police = referral_for(ctx, world.report_id, world.police)
    assert police.status == ReferralStatus.pending and police.reason == "Child lives in Ohio"
    with ctx.sessions() as session:
        actions = set(session.execute(select(AuditEntry.action)).scalars())
        assert not list(audit.verify(session))
    assert {"case.referred", "report.status"} <= actions
    # The same agency twice is refused, and nothing changes.
    again = refer(analyst, world.report_id, {world.police: "again"})
    assert again.status_code == 409 and "already referred" in again.text


def test_overriding_needs_a_reason(staff_client, ctx, world: World) -> None:  # type: ignore[no-untyped-def]
    analyst = staff_client(Role.analyst)
    response = refer(analyst, world.report_id, {world.elsewhere: "  "})
    assert response.status_code == 422 and "Say why Elsewhere Police should handle" in response.text
    assert status_of(ctx, world.report_id).status == ReportStatus.received
    nothing = refer(analyst, world.report_id, {})
    assert nothing.status_code == 422 and "Choose at least one agency" in nothing.text


def test_officers_see_only_their_agencys_cases(staff_client, ctx, world: World) -> None:  # type: ignore[no-untyped-def]
    analyst = staff_client(Role.analyst)
    refer(analyst, world.report_id, {world.police: "Child lives in Ohio"})
    referral = referral_for(ctx, world.report_id, world.police)
    ours = staff_client(Role.agency_officer, agency_id=world.police)
    theirs = staff_client(Role.agency_officer, agency_id=world.elsewhere)
    with ctx.sessions() as session:
        evidence_id = session.execute(select(EvidenceFile.id)).scalar_one()

    listing = ours.get("/staff/cases")
    assert listing.status_code == 200 and world.reference in listing.text
    assert ours.get(f"/staff/cases/{referral.id}").status_code == 200
    report_page = ours.get(f"/staff/reports/{world.report_id}")
    assert report_page.status_code == 200 and "PixelPlay" in report_page.text
    assert ours.get(f"/staff/evidence/{evidence_id}/preview").status_code == 200

    assert world.reference not in theirs.get("/staff/cases").text
    for path in (f"/staff/cases/{referral.id}", f"/staff/reports/{world.report_id}",
                 f"/staff/evidence/{evidence_id}/preview", f"/staff/cases/{uuid.uuid4()}",
                 f"/staff/reports/{world.report_id}/referrals"):
        assert theirs.get(path).status_code == 404, path
    for path in (f"/staff/cases/{referral.id}/accept", f"/staff/cases/{referral.id}/decline",
                 f"/staff/cases/{referral.id}/status", f"/staff/cases/{referral.id}/items",
                 f"/staff/cases/{referral.id}/package",
                 f"/staff/cases/{referral.id}/items/{uuid.uuid4()}/transfer"):
        assert post(theirs, path, reason="x", target="closed").status_code == 404, path
    assert referral_for(ctx, world.report_id, world.police).status == ReferralStatus.pending
    # Officers cannot refer, and cannot reach the queue.
    assert ours.get(f"/staff/reports/{world.report_id}/referrals").status_code == 404
    assert ours.get("/staff/queue").status_code == 404


def test_decline_returns_the_report_to_the_queue_only_when_no_agency_is_left(staff_client, ctx, world: World) -> None:  # type: ignore[no-untyped-def]
    analyst = staff_client(Role.analyst)
    refer(analyst, world.report_id, {world.police: "Ohio", world.welfare: "protection"})
    police = staff_client(Role.agency_officer, agency_id=world.police)
    welfare = staff_client(Role.agency_officer, agency_id=world.welfare)
    police_ref = referral_for(ctx, world.report_id, world.police)
    welfare_ref = referral_for(ctx, world.report_id, world.welfare)

    no_reason = post(police, f"/staff/cases/{police_ref.id}/decline", reason=" ")
    assert no_reason.status_code == 422 and "Say why the referral is declined" in no_reason.text
    declined = post(police, f"/staff/cases/{police_ref.id}/decline", reason="Outside our area")
    assert declined.status_code == 200 and "Referral declined" in declined.text
    assert status_of(ctx, world.report_id).status == ReportStatus.referred  # welfare still has it
    # A declined agency no longer reaches the report.
    assert police.get(f"/staff/reports/{world.report_id}").status_code == 404

    post(welfare, f"/staff/cases/{welfare_ref.id}/decline", reason="Not a protection case")
    assert status_of(ctx, world.report_id).status == ReportStatus.in_review
    queue = analyst.get("/staff/queue")
    assert world.reference in queue.text
    # Already answered: a second answer is refused.
    assert post(welfare, f"/staff/cases/{welfare_ref.id}/accept").status_code == 409


def test_lifecycle_to_prosecution_and_close_as_the_reporter_sees_it(client: TestClient, staff_client, ctx) -> None:  # type: ignore[no-untyped-def]
    police = make_agency(ctx, "Example Police Unit", ("GB",))
    page = client.get("/report")
    filed = client.post("/report", files=multipart(report_fields(csrf_token=csrf_token(page.text))))
    reference, codename = reference_from(filed.text), codename_from(filed.text)
    with ctx.sessions() as session:
        report_id = session.execute(select(Report.id).where(Report.reference == reference)).scalar_one()

    analyst = staff_client(Role.analyst)
    refer(analyst, report_id, {police: "Child lives in GB"})
    assert 'id="status">Referred to an agency<' in reporter_sign_in(client, codename).text

    officer = staff_client(Role.agency_officer, agency_id=police)
    referral = referral_for(ctx, report_id, police)
    case = f"/staff/cases/{referral.id}"
    too_early = post(officer, f"{case}/status", target="prosecution")
    assert too_early.status_code == 409 and "Accept the referral first" in too_early.text
    accepted = post(officer, f"{case}/accept", note="Taken by team 3")
    assert accepted.status_code == 200 and 'id="case-status">investigating<' in accepted.text
    post(officer, f"{case}/status", target="evidence_collected")
    unknown_jump = post(officer, f"{case}/status", target="received")
    assert unknown_jump.status_code == 409
    no_outcome = post(officer, f"{case}/status", target="closed")
    assert no_outcome.status_code == 422 and "Choose the outcome" in no_outcome.text
    post(officer, f"{case}/status", target="prosecution", note="File passed to prosecutor")
    closed = post(officer, f"{case}/status", target="closed", outcome="convicted")
    assert closed.status_code == 200 and 'id="case-outcome">Convicted<' in closed.text

    report = status_of(ctx, report_id)
    assert report.status == ReportStatus.closed and report.closed_at is not None
    with ctx.sessions() as session:
        steps = [(e.kind, e.details.get("to")) for e in session.execute(
            select(CaseEvent).where(CaseEvent.referral_id == referral.id).order_by(CaseEvent.at, CaseEvent.id)).scalars()]
        status_audit = [json.loads(d)["to"] for d in session.execute(
            select(AuditEntry.details).where(AuditEntry.action == "report.status").order_by(AuditEntry.seq)).scalars()]
    assert [s for s in steps if s[0] in ("referred", "accepted", "status")] == [
        ("referred", None), ("accepted", None), ("status", "investigating"),
        ("status", "evidence_collected"), ("status", "prosecution"), ("status", "closed")]
    assert status_audit == ["in_review", "referred", "investigating", "evidence_collected",
                            "prosecution", "closed"]
    reporter_page = reporter_sign_in(client, codename)
    assert 'id="status">Closed<' in reporter_page.text
    assert "convicted" not in reporter_page.text.lower()


def test_case_pages_are_translated(staff_client, ctx, world: World) -> None:  # type: ignore[no-untyped-def]
    from tests.test_i18n import untranslated

    analyst = staff_client(Role.analyst)
    report_page = analyst.get(f"/staff/reports/{world.report_id}")
    assert f'href="/staff/reports/{world.report_id}/referrals"' in report_page.text  # the panel
    refer(analyst, world.report_id, {world.police: "Child lives in Ohio"})
    officer = staff_client(Role.agency_officer, agency_id=world.police)
    referral = referral_for(ctx, world.report_id, world.police)
    post(officer, f"/staff/cases/{referral.id}/accept")
    # Data on these pages, not interface text: names, statuses, references, reasons.
    data = {"Tipline", "UTC", "TL", "Example", "Ohio", "Police", "Unit", "Children", "Services",
            "Elsewhere", "Test", "agency", "officer", "analyst", "Child", "lives", "in", "pending",
            "accepted", "investigating", "referred", "received", "police", "child", "welfare",
            "US", "OH", "FR", "staff", "SHA", "ZIP"}
    qps = {"accept-language": "qps"}
    for client, path in ((officer, "/staff/cases"), (officer, f"/staff/cases/{referral.id}"),
                         (analyst, f"/staff/reports/{world.report_id}/referrals")):
        page = client.get(path, headers=qps)
        assert page.status_code == 200
        # The timeline's recorded details and digests are data too.
        html = re.sub(r'<ol id="timeline">.*?</ol>|<code[^>]*>.*?</code>', "", page.text, flags=re.DOTALL)
        bare = [t for t in untranslated(html, data) if not t.startswith(("TL-", "20"))]
        assert bare == [], (path, bare)
