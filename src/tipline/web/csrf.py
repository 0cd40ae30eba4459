"""CSRF protection for HTML forms: a random cookie and a form field signed from it."""

from __future__ import annotations

import secrets

from fastapi import Request, Response

from tipline import crypto
from tipline.errors import PermissionDenied
from tipline.i18n import _
from tipline.web.deps import get_ctx

COOKIE = "tl_csrf"
FIELD = "csrf_token"


def cookie_value(request: Request) -> str:
    existing = request.cookies.get(COOKIE, "")
    if len(existing) == 43:
        return existing
    token: str | None = getattr(request.state, "new_csrf_cookie", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = token
    return token


def form_token(request: Request) -> str:
    return crypto.sign(get_ctx(request).keys, "csrf", cookie_value(request))


def set_cookie_if_new(request: Request, response: Response) -> None:
    token = getattr(request.state, "new_csrf_cookie", None)
    if token:
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                            secure=get_ctx(request).settings.cookie_secure, path="/")


def check(request: Request, submitted: str | None) -> None:
    cookie = request.cookies.get(COOKIE, "")
    expected = crypto.sign(get_ctx(request).keys, "csrf", cookie) if cookie else ""
    if not cookie or not submitted or not crypto.constant_time_equal(expected, submitted):
        raise PermissionDenied(_(
            "This form has expired or did not come from this site, so nothing was saved. "
            "Please check what you entered and send it again."
        ))
