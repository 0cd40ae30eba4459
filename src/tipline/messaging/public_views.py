"""The reporter's follow-up pages: sign in with the codename, read, reply, add files."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from tipline.errors import InvalidInput, NotFound, PermissionDenied, RateLimited
from tipline.i18n import _
from tipline.messaging import followup
from tipline.reports import labels
from tipline.reports import service as reports
from tipline.web import csrf
from tipline.web.deps import client_key, get_ctx, get_session
from tipline.web.multipart import parse_streaming_form
from tipline.web.pages import render

router = APIRouter(include_in_schema=False)
COOKIE = "tl_followup"


def _signin_page(request: Request, status_code: int = 200, error: str = "") -> Response:
    return render(request, "followup/signin.html", status_code=status_code, error=error)


@router.get("/followup", response_class=HTMLResponse)
def signin_form(request: Request) -> Response:
    return _signin_page(request)


@router.post("/followup", response_class=HTMLResponse)
async def signin(request: Request, codename: str = Form(""),
                 csrf_token: str = Form("")) -> Response:
    ctx = get_ctx(request)
    try:
        csrf.check(request, csrf_token)
        token = await run_in_threadpool(followup.sign_in, ctx, codename, client_key(request))
    except (InvalidInput, NotFound, PermissionDenied, RateLimited) as exc:
        return _signin_page(request, exc.status_code, exc.message)
    response = RedirectResponse("/followup/report", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/followup",
                        secure=ctx.settings.cookie_secure,
                        max_age=ctx.settings.followup_session_minutes * 60)
    return response


def _report_page(request: Request, session: Session, *, status_code: int = 200,
                 errors: dict[str, str] | None = None, notice: str = "",
                 body: str = "") -> Response:
    ctx = get_ctx(request)
    report = followup.current_report(session, request.cookies.get(COOKIE))
    page = followup.view(session, ctx.keys, report)
    return render(
        request, "followup/report.html", status_code=status_code, page=page,
        status_text=labels.coarse_status(page.status.value), errors=errors or {},
        notice=notice, body=body, max_files=ctx.settings.max_files,
        max_mb=ctx.settings.max_file_bytes // (1024 * 1024),
    )


@router.get("/followup/report", response_class=HTMLResponse)
def report_page(request: Request, session: Session = Depends(get_session, scope="function")) -> Response:
    try:
        return _report_page(request, session)
    except NotFound as exc:
        return _signin_page(request, 401, exc.message)


@router.post("/followup/report", response_class=HTMLResponse)
async def add(request: Request) -> Response:
    ctx = get_ctx(request)
    with ctx.sessions() as session:
        report = reports.report_for_token(session, request.cookies.get(COOKIE))
        report_id = report.id if report else None
    if report_id is None:
        return _signin_page(request, 401, _("Your session has ended. Please sign in again with your codename."))
    form = await parse_streaming_form(request, ctx)
    text = form.first("body")
    errors: dict[str, str] = dict(form.errors)
    notice = ""
    status_code = 200
    try:
        csrf.check(request, form.first(csrf.FIELD))
        if errors:
            raise InvalidInput(_("Nothing was added."), errors=errors)
        added = await run_in_threadpool(followup.add_to_report, ctx, report_id, text=text, blobs=form.blobs)
        notice = _("Thank you: your message was added.") if not added else \
            _("Thank you: your message and files were added.")
        text = ""
    except (InvalidInput, PermissionDenied) as exc:
        form.discard()
        status_code = exc.status_code
        errors = exc.errors if isinstance(exc, InvalidInput) and exc.errors else {"body": exc.message}
    with ctx.sessions() as session:
        return _report_page(request, session, status_code=status_code, errors=errors,
                            notice=notice, body=text)


@router.post("/followup/signout", response_class=HTMLResponse)
def signout(request: Request, csrf_token: str = Form(""),
            session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    token = request.cookies.get(COOKIE)
    if token:
        reports.close_followup_session(session, token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/followup")
    return response
