"""Staff sign-in state: who is asking, and whether they may."""

from __future__ import annotations

from fastapi import Depends, Request

from tipline.accounts import service as accounts
from tipline.accounts.permissions import Permission
from tipline.accounts.service import StaffUser
from tipline.errors import TiplineError
from tipline.i18n import _
from tipline.web.deps import get_ctx

COOKIE = "tl_staff"


class SignInRequired(TiplineError):
    """No signed-in staff member: HTML pages redirect to the sign-in page."""

    status_code = 401


def current_staff(request: Request) -> StaffUser:
    # A short session of its own: holding the request's transaction open here would block
    # routes that write from a worker thread (SQLite allows one writer at a time).
    with get_ctx(request).sessions() as session:
        state = accounts.session_state(session, request.cookies.get(COOKIE))
        if state is None or not state.mfa_passed:
            raise SignInRequired(_("Please sign in."))
        staff = accounts.as_staff(state.user)
    request.state.staff = staff
    return staff


def requires(permission: Permission):  # type: ignore[no-untyped-def]
    """Dependency: the signed-in staff member, who must hold `permission`."""

    def dependency(staff: StaffUser = Depends(current_staff)) -> StaffUser:
        staff.require(permission)
        return staff

    return dependency
