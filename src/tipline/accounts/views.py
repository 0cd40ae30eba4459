"""Staff sign-in (password, then TOTP; enrolment on first sign-in) and the admin pages."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from tipline.accounts import service as accounts
from tipline.accounts import totp
from tipline.accounts.permissions import Permission, Role
from tipline.accounts.service import StaffUser
from tipline.db import transaction
from tipline.errors import InvalidInput, PermissionDenied, RateLimited, TiplineError
from tipline.i18n import _
from tipline.web import csrf
from tipline.web.deps import client_key, get_ctx, get_session
from tipline.web.pages import render_staff
from tipline.web.staff import COOKIE, requires

router = APIRouter(include_in_schema=False)


def _home_for(role: Role) -> str:
    return "/staff/cases" if role == Role.agency_officer else "/staff/queue"


def _set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/staff",
                        secure=get_ctx(request).settings.cookie_secure)


@router.get("/staff/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return render_staff(request, "accounts/login.html")


@router.post("/staff/login", response_class=HTMLResponse)
async def login(request: Request, email: str = Form(""), password: str = Form(""),
                csrf_token: str = Form("")) -> Response:
    ctx = get_ctx(request)

    def attempt() -> str:
        ctx.followup_limiter.check("staff:" + client_key(request))
        with transaction(ctx.sessions) as session:
            try:
                user = accounts.authenticate(session, email=email, password=password)
            except (PermissionDenied, RateLimited) as exc:
                # The failed-attempt counter must be saved even though sign-in failed.
                session.commit()
                raise exc from None
            return accounts.start_session(session, user)

    try:
        csrf.check(request, csrf_token)
        token = await run_in_threadpool(attempt)
    except TiplineError as exc:
        return render_staff(request, "accounts/login.html", status_code=exc.status_code,
                            error=exc.message, email=email)
    response = RedirectResponse("/staff/2fa", status_code=303)
    _set_cookie(request, response, token)
    return response


def _pending(request: Request, session: Session) -> accounts.SessionState | None:
    return accounts.session_state(session, request.cookies.get(COOKIE))


@router.get("/staff/2fa", response_class=HTMLResponse)
def second_factor_form(request: Request, session: Session = Depends(get_session, scope="function")) -> Response:
    state = _pending(request, session)
    if state is None:
        return RedirectResponse("/staff/login", status_code=303)
    if state.mfa_passed:
        return RedirectResponse(_home_for(state.user.role), status_code=303)
    return _second_factor_page(request, session, state)


def _second_factor_page(request: Request, session: Session, state: accounts.SessionState,
                        error: str = "", status_code: int = 200) -> Response:
    ctx = get_ctx(request)
    secret = uri = None
    if not state.user.totp_enrolled:
        secret = accounts.enrolment_secret(session, ctx.keys, state.user)
        uri = totp.provisioning_uri(secret, state.user.email, ctx.settings.site_name)
    return render_staff(request, "accounts/second_factor.html", status_code=status_code,
                        secret=secret, uri=uri, error=error)


@router.post("/staff/2fa", response_class=HTMLResponse)
def second_factor(request: Request, code: str = Form(""), csrf_token: str = Form(""),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    ctx = get_ctx(request)
    csrf.check(request, csrf_token)
    state = _pending(request, session)
    token = request.cookies.get(COOKIE, "")
    if state is None:
        return RedirectResponse("/staff/login", status_code=303)
    try:
        accounts.check_second_factor(session, ctx.keys, state.user, code, token)
    except InvalidInput as exc:
        # Keep the failure count, then show the form again.
        session.commit()
        return _second_factor_page(request, session, state, exc.message, 422)
    return RedirectResponse(_home_for(state.user.role), status_code=303)


@router.post("/staff/logout")
def logout(request: Request, csrf_token: str = Form(""),
           session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    token = request.cookies.get(COOKIE)
    if token:
        accounts.end_session(session, token)
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(COOKIE, path="/staff")
    return response


# --- administration ------------------------------------------------------------------------

@router.get("/staff/admin/users", response_class=HTMLResponse)
def users_page(request: Request, staff: StaffUser = Depends(requires(Permission.users_manage)),
               session: Session = Depends(get_session, scope="function")) -> Response:
    return _users_page(request, session)


def _users_page(request: Request, session: Session, *, error: str = "", notice: str = "",
                status_code: int = 200) -> Response:
    return render_staff(request, "accounts/users.html", status_code=status_code,
                        users=accounts.list_users(session), agencies=accounts.list_agencies(session),
                        roles=list(Role), error=error, notice=notice)


@router.post("/staff/admin/users", response_class=HTMLResponse)
def create_user(request: Request, email: str = Form(""), display_name: str = Form(""),
                role: str = Form(""), agency_id: str = Form(""), password: str = Form(""),
                csrf_token: str = Form(""),
                staff: StaffUser = Depends(requires(Permission.users_manage)),
                session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    try:
        chosen_role = Role(role)
    except ValueError:
        return _users_page(request, session, error=_("Choose a role."), status_code=422)
    try:
        accounts.create_user(session, email=email, display_name=display_name, role=chosen_role,
                             password=password, agency_id=_uuid(agency_id), actor=staff.actor)
    except TiplineError as exc:
        session.rollback()
        return _users_page(request, session, error=exc.message, status_code=exc.status_code)
    return _users_page(request, session, notice=_("Account created. The person sets up two-step sign-in at their first sign-in."))


@router.post("/staff/admin/users/{user_id}/{action}", response_class=HTMLResponse)
def user_action(request: Request, user_id: uuid.UUID, action: str, csrf_token: str = Form(""),
                password: str = Form(""),
                staff: StaffUser = Depends(requires(Permission.users_manage)),
                session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    user = accounts.get_user(session, user_id)
    try:
        if action == "reset-password":
            accounts.reset_password(session, user, password, actor=staff.actor)
        elif action == "reset-2fa":
            accounts.reset_second_factor(session, user, actor=staff.actor)
        elif action in ("deactivate", "activate"):
            accounts.set_active(session, user, action == "activate", actor=staff.actor)
        else:
            raise InvalidInput(_("Unknown action."))
    except TiplineError as exc:
        session.rollback()
        return _users_page(request, session, error=exc.message, status_code=exc.status_code)
    return _users_page(request, session, notice=_("Done. Their open sessions were ended."))


@router.get("/staff/admin/agencies", response_class=HTMLResponse)
def agencies_page(request: Request, staff: StaffUser = Depends(requires(Permission.agencies_manage)),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    return render_staff(request, "accounts/agencies.html", agencies=accounts.list_agencies(session))


@router.post("/staff/admin/agencies", response_class=HTMLResponse)
def create_agency(request: Request, name: str = Form(""), kind: str = Form("police"),
                  jurisdictions: str = Form(""), notify_email: str = Form(""),
                  accepts_anonymous: str = Form(""), csrf_token: str = Form(""),
                  staff: StaffUser = Depends(requires(Permission.agencies_manage)),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    csrf.check(request, csrf_token)
    try:
        accounts.create_agency(
            session, name=name, kind=kind, jurisdictions=jurisdictions.replace(",", " ").split(),
            notify_email=notify_email,
            accepts_anonymous={"yes": True, "no": False}.get(accepts_anonymous), actor=staff.actor)
    except TiplineError as exc:
        session.rollback()
        return render_staff(request, "accounts/agencies.html", status_code=exc.status_code,
                            agencies=accounts.list_agencies(session), error=exc.message)
    return RedirectResponse("/staff/admin/agencies", status_code=303)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value.strip() else None
    except ValueError as exc:
        raise InvalidInput(_("No such agency."), field="agency_id") from exc
