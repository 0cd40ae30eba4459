"""Rendering HTML pages with the safety gate and the form token every page needs."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from tipline.web import csrf
from tipline.web.deps import get_ctx
from tipline.web.locale import visitor_country
from tipline.web.templating import environment


def page_context(request: Request) -> dict[str, Any]:
    ctx = get_ctx(request)
    country = visitor_country(request, ctx.settings.default_country)
    return {
        "site_name": ctx.settings.site_name,
        "lang": getattr(request.state, "locale", "en"),
        "country": country,
        "emergency": ctx.directory.emergency(country) if country else None,
        "countries": ctx.directory.country_choices(),
        "quick_exit_url": ctx.settings.quick_exit_url,
        "request_path": request.url.path,
        "csrf_field": csrf.FIELD,
        "csrf_token": csrf.form_token(request),
    }


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    context = page_context(request)
    context.update(values)
    body = environment().get_template(template).render(context)
    response = HTMLResponse(body, status_code=status_code)
    csrf.set_cookie_if_new(request, response)
    return response


def render_staff(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Staff pages: no public safety gate, a staff navigation instead."""
    ctx = get_ctx(request)
    context: dict[str, Any] = {
        "site_name": ctx.settings.site_name,
        "lang": getattr(request.state, "locale", "en"),
        "staff": getattr(request.state, "staff", None),
        "csrf_field": csrf.FIELD,
        "csrf_token": csrf.form_token(request),
        "request_path": request.url.path,
    }
    context.update(values)
    body = environment().get_template(template).render(context)
    response = HTMLResponse(body, status_code=status_code)
    csrf.set_cookie_if_new(request, response)
    return response
