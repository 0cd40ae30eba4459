"""Analyst pages: the queue and the report view."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from tipline import crypto
from tipline.accounts import service as accounts
from tipline.accounts.permissions import Permission, Role
from tipline.accounts.service import StaffUser
from tipline.audit import service as audit
from tipline.cases import service as cases
from tipline.errors import InvalidInput, NotFound, TiplineError
from tipline.esp import service as esp
from tipline.evidence import preview
from tipline.evidence import service as evidence
from tipline.evidence.models import EvidenceFile
from tipline.i18n import _
from tipline.messaging import service as messaging
from tipline.messaging.enums import Author
from tipline.reports import labels
from tipline.reports import service as reports
from tipline.reports.enums import IncidentType, Source
from tipline.reports.models import Report
from tipline.reports.states import ReportStatus
from tipline.triage import correlation, known
from tipline.triage import service as triage
from tipline.triage.access import access_evidence, access_report
from tipline.web import csrf
from tipline.web.deps import get_ctx, get_session
from tipline.web.pages import render_staff
from tipline.web.staff import current_staff, requires

router = APIRouter(include_in_schema=False)
REVEAL_SECONDS = 600


@router.get("/staff/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    status: str = Query("open"), incident_type: str = Query(""), country: str = Query(""),
    source: str = Query(""), assigned: str = Query(""), page: int = Query(1, ge=1, le=100_000),
    staff: StaffUser = Depends(requires(Permission.queue_view)),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    filters = triage.QueueFilter(status=status, incident_type=incident_type, country=country,
                                 source=source, assigned=assigned, page=page)
    try:
        result = triage.queue(session, filters, me=staff.id)
        error = ""
    except InvalidInput as exc:
        result = triage.queue(session, triage.QueueFilter(), me=staff.id)
        error = exc.message
    query = {k: v for k, v in vars(filters).items() if v and k != "page"}
    return render_staff(
        request, "triage/queue.html", status_code=422 if error else 200, page=result,
        filters=filters, error=error, statuses=[s.value for s in ReportStatus],
        types=[t.value for t in IncidentType], sources=[s.value for s in Source],
        users=[(u.id, u.display_name) for u in accounts.list_users(session) if u.active],
        query=urlencode(query),
        known_reports=known.reports_with_matches(session, [r.id for r in result.rows]),
    )


def _report_page(request: Request, session: Session, staff: StaffUser, report: Report, *,
                 error: str = "", notice: str = "", status_code: int = 200) -> Response:
    ctx = get_ctx(request)
    files = evidence.list_for_report(session, report.id)
    revealed = request.query_params.get("revealed", "")
    grant = request.query_params.get("grant", "")
    # Officers see only what was referred to them: not other reports' references.
    officer = staff.role == Role.agency_officer
    related = [] if officer else correlation.related_reports(session, report.id)
    legal_basis_needed = esp.evidence_needing_legal_basis(session, [f.id for f in files])
    return render_staff(
        request, "triage/report.html", status_code=status_code, report=report,
        legal_basis_needed=legal_basis_needed, known=known.summarise(session, report.id, len(files)),
        files=[(f, evidence.original_name(ctx.keys, f)) for f in files],
        messages=messaging.list_messages(session, ctx.keys, report.id, include_internal=True),
        coarse=labels.coarse_status(reports.coarse_status(report).value),
        types=labels.incident_types(), can=staff.can, Permission=Permission,
        revealed=revealed, grant=grant, related=related, error=error, notice=notice,
        referrals=cases.list_cases(session, staff, report_id=report.id),
        assignable=[(u.id, u.display_name) for u in accounts.list_users(session)
                    if u.active and u.role != Role.agency_officer] if staff.can(Permission.report_assign) else [],
        assignee=accounts.get_user(session, report.assigned_to_id).display_name if report.assigned_to_id else None,
    )


def _notice(done: str) -> str:
    return {
        "claim": _("You are now working on this report."),
        "assign": _("Assignment saved."),
        "classify": _("Classification saved."),
        "question": _("Question sent: the reporter sees it when they sign in with their codename."),
        "note": _("Note saved."),
        "duplicate": _("Marked as a duplicate."),
        "merge": _("The other report was merged into this one."),
        "not-actionable": _("Marked as not actionable."),
    }.get(done, "")


@router.get("/staff/reports/{report_id}", response_class=HTMLResponse)
def report_page(request: Request, report_id: uuid.UUID, done: str = Query(""),
                staff: StaffUser = Depends(current_staff),
                session: Session = Depends(get_session, scope="function")) -> Response:
    report = access_report(session, staff, report_id)
    return _report_page(request, session, staff, report, notice=_notice(done))


@router.get("/staff/reports/{report_id}/contact", response_class=HTMLResponse)
def contact_page(request: Request, report_id: uuid.UUID,
                 staff: StaffUser = Depends(requires(Permission.report_contact_view)),
                 session: Session = Depends(get_session, scope="function")) -> Response:
    report = access_report(session, staff, report_id)
    details = reports.contact_details(get_ctx(request).keys, report)
    # Every look at a reporter's identity is on record.
    audit.record(session, actor=staff.actor, action="report.contact_viewed", object_type="report",
                 object_id=str(report.id))
    return render_staff(request, "triage/contact.html", report=report, details=details)


@router.post("/staff/reports/{report_id}/{action}", response_class=HTMLResponse)
def report_action(request: Request, report_id: uuid.UUID, action: str,
                  csrf_token: str = Form(""), body: str = Form(""), types: list[str] = Form([]),
                  assignee: str = Form(""),
                  staff: StaffUser = Depends(current_staff),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    ctx = get_ctx(request)
    report = access_report(session, staff, report_id)
    try:
        _do_action(session, ctx, staff, report, action, body=body, types=types, assignee=assignee)
    except TiplineError as exc:
        session.rollback()
        report = access_report(session, staff, report_id)
        return _report_page(request, session, staff, report, error=exc.message, status_code=exc.status_code)
    # Redirect after success, so reloading the page never repeats the action.
    return RedirectResponse(f"/staff/reports/{report.id}?done={action}", status_code=303)


def _do_action(session: Session, ctx, staff: StaffUser, report: Report, action: str, *,  # type: ignore[no-untyped-def]
               body: str, types: list[str], assignee: str) -> None:
    if action == "claim":
        staff.require(Permission.report_assign)
        triage.assign(session, report, staff.id, actor=staff.actor, claim=True)
        return
    if action == "assign":
        staff.require(Permission.report_assign)
        triage.assign(session, report, uuid.UUID(assignee) if assignee else None, actor=staff.actor)
        return
    if action == "classify":
        staff.require(Permission.report_edit)
        triage.confirm_types(session, report, types, actor=staff.actor)
        return
    if action in ("note", "question"):
        if not body.strip():
            raise InvalidInput(_("Write something first."), field="body")
        question = action == "question"
        staff.require(Permission.message_reporter if question else Permission.report_edit)
        messaging.post_message(
            session, ctx.keys, report_id=report.id,
            author=Author.staff if question else Author.internal,
            author_label=_("The people handling your report") if question else staff.display_name,
            body=body, actor=staff.actor, max_chars=ctx.settings.max_text_chars)
        return
    if action == "duplicate":
        staff.require(Permission.report_merge)
        original = access_report(session, staff, _report_uuid(body))
        correlation.mark_duplicate(session, report, original, staff.actor)
        return
    if action == "merge":
        staff.require(Permission.report_merge)
        source = access_report(session, staff, _report_uuid(body))
        correlation.merge_reports(session, target=report, sources=[source], actor=staff.actor)
        return
    if action == "not-actionable":
        staff.require(Permission.report_edit)
        reports.change_status(session, report, ReportStatus.not_actionable, actor=staff.actor, reason=body)
        return
    raise NotFound(_("There is no page at this address."))


def _report_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError as exc:
        raise InvalidInput(_("Choose one of the related reports."), field="body") from exc


# --- evidence: blurred previews, recorded reveals ------------------------------------------

def _grant(ctx, staff: StaffUser, evidence_id: uuid.UUID, expires: int) -> str:  # type: ignore[no-untyped-def]
    return crypto.sign(ctx.keys, "reveal", f"{staff.id}:{evidence_id}:{expires}")


@router.get("/staff/evidence/{evidence_id}/preview")
def evidence_preview(request: Request, evidence_id: uuid.UUID,
                     staff: StaffUser = Depends(current_staff),
                     session: Session = Depends(get_session, scope="function")) -> Response:
    ctx = get_ctx(request)
    item = access_evidence(session, staff, evidence_id)
    # Known material is never sent to the browser, not even blurred: only a recorded reveal opens it.
    if known.file_matches(session, item):
        raise NotFound(_("This file is known material: there is no preview. Reveal it with a reason if you must see it."))
    if item.media_type not in preview.PREVIEWABLE:
        raise NotFound(_("No preview for this kind of file."))
    data = b"".join(evidence.read_plaintext(ctx.blobs, ctx.keys, item))
    return Response(preview.blurred_preview(data), media_type="image/png",
                    headers={"Cache-Control": "no-store"})


@router.post("/staff/evidence/{evidence_id}/reveal")
def evidence_reveal(request: Request, evidence_id: uuid.UUID, csrf_token: str = Form(""),
                    reason: str = Form(""), legal_basis: str = Form(""),
                    staff: StaffUser = Depends(requires(Permission.evidence_reveal)),
                    session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    ctx = get_ctx(request)
    item = access_evidence(session, staff, evidence_id)
    try:
        _record_reveal(session, staff, item, reason=reason, legal_basis=legal_basis)
    except InvalidInput as exc:
        session.rollback()
        report = access_report(session, staff, item.report_id)
        return _report_page(request, session, staff, report, status_code=422, error=exc.message)
    expires = int(time.time()) + REVEAL_SECONDS
    query = urlencode({"revealed": str(item.id), "grant": f"{expires}.{_grant(ctx, staff, item.id, expires)}"})
    return RedirectResponse(f"/staff/reports/{item.report_id}?{query}#evidence-{item.id}", status_code=303)


def _record_reveal(session: Session, staff: StaffUser, item: EvidenceFile, *, reason: str,
                   legal_basis: str) -> None:
    """Check every rule first, then record: a refused reveal leaves nothing behind."""
    matches = known.file_matches(session, item)
    details = {"reason": reason.strip()[:500]} if reason.strip() else {}
    if matches:
        known.require_reason(reason)
    if esp.evidence_needing_legal_basis(session, [item.id]):
        if not legal_basis.strip():
            raise InvalidInput(_("The partner never viewed this file. Record the legal basis for "
                                 "opening it (for example the warrant reference) first."), field="legal_basis")
        details["legal_basis"] = legal_basis.strip()[:500]
    if matches:
        extra = {"legal_basis": details["legal_basis"]} if "legal_basis" in details else None
        known.reveal_known(session, item, matches, actor=staff.actor, reason=reason, extra=extra)
    else:
        evidence.record_custody(session, item, action="viewed", actor=staff.actor, details=details or None)


@router.get("/staff/evidence/{evidence_id}/original")
def evidence_original(request: Request, evidence_id: uuid.UUID, grant: str = Query(""),
                      staff: StaffUser = Depends(requires(Permission.evidence_reveal)),
                      session: Session = Depends(get_session, scope="function")) -> Response:
    """Only with a fresh grant from a recorded reveal: nobody sees a file unrecorded."""
    ctx = get_ctx(request)
    item = access_evidence(session, staff, evidence_id)
    expires_text, _dot, signature = grant.partition(".")
    valid = expires_text.isdigit() and int(expires_text) >= time.time() and crypto.constant_time_equal(
        signature, _grant(ctx, staff, item.id, int(expires_text)))
    if not valid:
        raise NotFound(_("Reveal the file first; the permission to see it lasts ten minutes."))
    data = b"".join(evidence.read_plaintext(ctx.blobs, ctx.keys, item))
    disposition = "inline" if item.media_type.startswith("image/") else "attachment"
    return Response(data, media_type=item.media_type, headers={
        "Cache-Control": "no-store", "Content-Disposition": f'{disposition}; filename="evidence-{item.id}"'})

