"""Case pages: referring a report, the agency's case list and case page, the package."""

from __future__ import annotations

import base64
import uuid

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from tipline import crypto, mail
from tipline.accounts import service as accounts
from tipline.accounts.permissions import Permission
from tipline.accounts.service import StaffUser
from tipline.cases import notices
from tipline.cases import package as packages
from tipline.cases import service as cases
from tipline.cases.models import CaseOutcome, Referral, ReferralStatus
from tipline.errors import InvalidInput, TiplineError
from tipline.evidence import service as evidence
from tipline.i18n import _
from tipline.reports import labels
from tipline.reports import service as reports
from tipline.reports.models import Report
from tipline.routing import suggest
from tipline.triage import known
from tipline.triage.access import access_report
from tipline.web import csrf
from tipline.web.deps import get_ctx, get_session
from tipline.web.pages import render_staff
from tipline.web.staff import requires

router = APIRouter(include_in_schema=False)


def _mail_settings(request: Request) -> mail.MailSettings:
    """Read from TIPLINE_SMTP_* once per app, on first use."""
    state = request.app.state
    settings: mail.MailSettings | None = getattr(state, "mail_settings", None)
    if settings is None:
        settings = mail.MailSettings()
        state.mail_settings = settings
    return settings


def outcome_labels() -> list[tuple[str, str]]:
    return [
        (CaseOutcome.arrest.value, _("Arrest")),
        (CaseOutcome.charged.value, _("Charged")),
        (CaseOutcome.convicted.value, _("Convicted")),
        (CaseOutcome.no_further_action.value, _("No further action")),
        (CaseOutcome.unfounded.value, _("Unfounded")),
    ]


def step_labels() -> dict[str, str]:
    return {
        "investigating": _("Investigation started"),
        "evidence_collected": _("Evidence collected"),
        "prosecution": _("Passed for prosecution"),
        "closed": _("Closed"),
    }


def event_labels() -> dict[str, str]:
    return {
        "referred": _("Referred"),
        "accepted": _("Accepted"),
        "declined": _("Declined"),
        "status": _("Status changed"),
        "notified": _("Agency notified by e-mail"),
        "notice_failed": _("E-mail notice could not be sent"),
        "item_recorded": _("Item recorded"),
        "exported": _("Package exported"),
    }


# --- referring a report ------------------------------------------------------------------

def _referral_page(request: Request, session: Session, staff: StaffUser, report: Report, *,
                   error: str = "", errors: dict[str, str] | None = None,
                   chosen: set[str] | None = None, reasons: dict[str, str] | None = None,
                   status_code: int = 200) -> Response:
    suggestions = {s.agency_id: s for s in suggest.suggest_agencies(session, report)}
    agencies = accounts.list_agencies(session, active_only=True)
    rank = {agency_id: i for i, agency_id in enumerate(suggestions)}
    agencies.sort(key=lambda a: (rank.get(a.id, len(rank)), a.name.casefold()))
    files = [f.id for f in evidence.list_for_report(session, report.id)]
    return render_staff(
        request, "cases/refer.html", status_code=status_code, report=report,
        agencies=agencies, suggestions=suggestions,
        referrals=cases.list_cases(session, staff, report_id=report.id),
        chosen=chosen if chosen is not None else {str(a) for a in list(suggestions)[:1]},
        reasons=reasons or {}, error=error, errors=errors or {},
        done=request.query_params.get("done") == "1",
        known=known.summarise(session, report.id, len(files)),
        viewed=len(cases.viewed_evidence(session, files)),
    )


@router.get("/staff/reports/{report_id}/referrals", response_class=HTMLResponse)
def referral_form(request: Request, report_id: uuid.UUID,
                  staff: StaffUser = Depends(requires(Permission.referral_create)),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    report = access_report(session, staff, report_id)
    return _referral_page(request, session, staff, report)


@router.post("/staff/reports/{report_id}/referrals/new", response_class=HTMLResponse)
def refer(request: Request, report_id: uuid.UUID, csrf_token: str = Form(""),
          agency: list[str] = Form([]), agency_row: list[str] = Form([]),
          reason: list[str] = Form([]),
          staff: StaffUser = Depends(requires(Permission.referral_create)),
          session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    report = access_report(session, staff, report_id)
    reasons = dict(zip(agency_row, reason, strict=False))
    suggested = {s.agency_id for s in suggest.suggest_agencies(session, report)}
    try:
        choices = []
        for value in dict.fromkeys(agency):
            try:
                agency_id = uuid.UUID(value)
            except ValueError as exc:
                raise InvalidInput(_("No such agency."), field="agencies") from exc
            choices.append(cases.ReferralChoice(agency_id, reasons.get(value, ""), agency_id in suggested))
        created = cases.refer_report(session, report, choices, staff=staff)
    except TiplineError as exc:
        session.rollback()
        report = access_report(session, staff, report_id)
        return _referral_page(request, session, staff, report, error=exc.message,
                              chosen=set(agency), reasons=reasons, status_code=exc.status_code)
    task = BackgroundTask(notices.send_referral_notices, get_ctx(request), _mail_settings(request),
                          [r.id for r in created], str(request.base_url))
    # The task runs after the response, so after this request's transaction has committed.
    return RedirectResponse(f"/staff/reports/{report.id}/referrals?done=1", status_code=303,
                            background=task)


# --- the agency's side --------------------------------------------------------------------

@router.get("/staff/cases", response_class=HTMLResponse)
def case_list(request: Request, status: str = Query(""), report: str = Query(""),
              staff: StaffUser = Depends(requires(Permission.case_view)),
              session: Session = Depends(get_session, scope="function")) -> Response:
    error = ""
    try:
        report_id = uuid.UUID(report) if report else None
        rows = cases.list_cases(session, staff, status=status, report_id=report_id)
    except (ValueError, InvalidInput):
        rows, error = cases.list_cases(session, staff), _("Unknown filter.")
    return render_staff(request, "cases/list.html", status_code=422 if error else 200, rows=rows,
                        status=status, statuses=[s.value for s in ReferralStatus], error=error)


@router.get("/staff/cases/signing-key")
def signing_key(request: Request, staff: StaffUser = Depends(requires(Permission.case_view))) -> Response:
    """The public key packages are signed with, for `tipline package verify --public-key`."""
    key = packages.public_key(get_ctx(request).settings.keys_dir)
    return Response(base64.b64encode(key).decode() + "\n", media_type="text/plain", headers={
        "Content-Disposition": 'attachment; filename="tipline-package-key.pub"'})


def _case_page(request: Request, session: Session, staff: StaffUser, referral: Referral, *,
               error: str = "", errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    report = session.get(Report, referral.report_id)
    agency = accounts.get_agency(session, referral.agency_id)
    assert report is not None
    items = cases.items(session, referral.id)
    custody: dict[uuid.UUID, list[object]] = {i.id: [] for i in items}
    for event in cases.item_custody(session, list(custody)):
        custody[event.item_id].append(event)
    timeline = cases.events(session, referral.id)
    return render_staff(
        request, "cases/case.html", status_code=status_code, referral=referral, report=report,
        agency=agency, items=items, custody=custody, timeline=timeline,
        names=cases.user_names(session, {referral.referred_by_id, referral.decided_by_id}),
        report_visible=cases.agency_has_report(session, referral.agency_id, report.id) or staff.can(Permission.report_view),
        next_steps=[s.value for s in cases.next_steps(report)] if referral.status == ReferralStatus.accepted else [],
        steps=step_labels(), event_labels=event_labels(), outcomes=outcome_labels(), can=staff.can, Permission=Permission,
        coarse=labels.coarse_status(reports.coarse_status(report).value),
        fingerprint=crypto.key_fingerprint(packages.public_key(get_ctx(request).settings.keys_dir)),
        error=error, errors=errors or {}, notice=_notice(request.query_params.get("done", "")),
    )


def _notice(done: str) -> str:
    return {
        "accepted": _("Referral accepted: the case is under investigation."),
        "declined": _("Referral declined: the report went back to the analysts."),
        "status": _("The case moved on."),
        "item": _("Item recorded, with its first custody event."),
        "transfer": _("Transfer recorded in the chain of custody."),
    }.get(done, "")


@router.get("/staff/cases/{referral_id}", response_class=HTMLResponse)
def case_page(request: Request, referral_id: uuid.UUID,
              staff: StaffUser = Depends(requires(Permission.case_view)),
              session: Session = Depends(get_session, scope="function")) -> Response:
    referral = cases.access_referral(session, staff, referral_id)
    return _case_page(request, session, staff, referral)


def _after(request: Request, session: Session, staff: StaffUser, referral_id: uuid.UUID,
           done: str, exc: TiplineError | None) -> Response:
    if exc is None:
        return RedirectResponse(f"/staff/cases/{referral_id}?done={done}", status_code=303)
    session.rollback()
    referral = cases.access_referral(session, staff, referral_id)
    errors = exc.errors if isinstance(exc, InvalidInput) else {}
    return _case_page(request, session, staff, referral, error=exc.message, errors=errors,
                      status_code=exc.status_code)


@router.post("/staff/cases/{referral_id}/accept", response_class=HTMLResponse)
def case_accept(request: Request, referral_id: uuid.UUID, csrf_token: str = Form(""),
                note: str = Form(""),
                staff: StaffUser = Depends(requires(Permission.case_update)),
                session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    referral = cases.access_referral(session, staff, referral_id)
    try:
        cases.accept(session, referral, staff=staff, note=note)
    except TiplineError as exc:
        return _after(request, session, staff, referral_id, "", exc)
    return _after(request, session, staff, referral_id, "accepted", None)


@router.post("/staff/cases/{referral_id}/decline", response_class=HTMLResponse)
def case_decline(request: Request, referral_id: uuid.UUID, csrf_token: str = Form(""),
                 reason: str = Form(""),
                 staff: StaffUser = Depends(requires(Permission.case_update)),
                 session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    referral = cases.access_referral(session, staff, referral_id)
    try:
        cases.decline(session, referral, staff=staff, reason=reason)
    except TiplineError as exc:
        return _after(request, session, staff, referral_id, "", exc)
    return _after(request, session, staff, referral_id, "declined", None)


@router.post("/staff/cases/{referral_id}/status", response_class=HTMLResponse)
def case_status(request: Request, referral_id: uuid.UUID, csrf_token: str = Form(""),
                target: str = Form(""), outcome: str = Form(""), note: str = Form(""),
                staff: StaffUser = Depends(requires(Permission.case_update)),
                session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    referral = cases.access_referral(session, staff, referral_id)
    try:
        cases.advance(session, referral, target, staff=staff, outcome=outcome, note=note)
    except TiplineError as exc:
        return _after(request, session, staff, referral_id, "", exc)
    return _after(request, session, staff, referral_id, "status", None)


@router.post("/staff/cases/{referral_id}/items", response_class=HTMLResponse)
def case_item(request: Request, referral_id: uuid.UUID, csrf_token: str = Form(""),
              description: str = Form(""), acquired_where: str = Form(""),
              acquired_how: str = Form(""), sha256: str = Form(""), collected_by: str = Form(""),
              collected_at: str = Form(""),
              staff: StaffUser = Depends(requires(Permission.case_evidence_record)),
              session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    referral = cases.access_referral(session, staff, referral_id)
    data = cases.ItemInput(description, acquired_where, acquired_how, sha256, collected_by, collected_at)
    try:
        cases.record_item(session, referral, data, staff=staff)
    except TiplineError as exc:
        return _after(request, session, staff, referral_id, "", exc)
    return _after(request, session, staff, referral_id, "item", None)


@router.post("/staff/cases/{referral_id}/items/{item_id}/transfer", response_class=HTMLResponse)
def case_item_transfer(request: Request, referral_id: uuid.UUID, item_id: uuid.UUID,
                       csrf_token: str = Form(""), to: str = Form(""), reason: str = Form(""),
                       staff: StaffUser = Depends(requires(Permission.case_evidence_record)),
                       session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    referral = cases.access_referral(session, staff, referral_id)
    item = cases.access_item(session, staff, referral, item_id)
    try:
        cases.transfer_item(session, item, to=to, reason=reason, staff=staff)
    except TiplineError as exc:
        return _after(request, session, staff, referral_id, "", exc)
    return _after(request, session, staff, referral_id, "transfer", None)


@router.post("/staff/cases/{referral_id}/package")
def case_package(request: Request, referral_id: uuid.UUID, csrf_token: str = Form(""),
                 staff: StaffUser = Depends(requires(Permission.case_export)),
                 session: Session = Depends(get_session, scope="function")) -> Response:
    """Download the signed package; the export is recorded before the response is sent."""
    csrf.check(request, csrf_token)
    ctx = get_ctx(request)
    referral = cases.access_referral(session, staff, referral_id)
    built = packages.build_package(session, keys=ctx.keys, blobs=ctx.blobs,
                                   keys_dir=ctx.settings.keys_dir, referral=referral,
                                   staff=staff, site_name=ctx.settings.site_name)
    return Response(built.data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{built.filename}"',
        "Cache-Control": "no-store"})
