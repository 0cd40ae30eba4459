"""Public pages: where to report in each country, and choosing one's country."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tipline.errors import NotFound
from tipline.i18n import _
from tipline.routing.directory import DirectoryCache, country_name
from tipline.web.deps import get_ctx
from tipline.web.locale import COUNTRY_COOKIE
from tipline.web.pages import render

router = APIRouter(include_in_schema=False)

COOKIE_SECONDS = 365 * 24 * 3600
_LEADING_NUMBER = re.compile(r"(\+?\d[\d \-]*\d)(.*)", re.DOTALL)


def kind_labels() -> dict[str, str]:
    # Built per call so the labels follow the request's language.
    return {
        "police": _("Police and law enforcement"),
        "hotline": _("Reporting hotlines"),
        "child-welfare": _("Child protection services"),
        "helpline": _("Helplines and support"),
        "ngo": _("Other organisations that can help"),
        "international": _("International bodies"),
    }


def phone_parts(phone: str) -> tuple[str, str, str] | None:
    """Splits "+1-800-843-5678 (1-800-THE-LOST)" into the number to link, its tel: address
    and the words after it; None when the text does not start with a number."""
    match = _LEADING_NUMBER.match(phone.strip())
    if match is None:
        return None
    number, rest = match.groups()
    return number, "tel:" + re.sub(r"[^\d+]", "", number), rest


def safe_next(target: str) -> str:
    """Only a path on this site; "//host" and "/\\host" are other sites to a browser."""
    if (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and target.isprintable()
        and len(target) <= 2000
    ):
        return target
    return "/"


def _directory(request: Request) -> DirectoryCache:
    return get_ctx(request).directory


@router.get("/where-to-report", response_class=HTMLResponse)
def where_to_report(request: Request, country: Annotated[str, Query(max_length=100)] = "") -> Response:
    directory = _directory(request)
    error = ""
    chosen = country.strip().upper()
    if chosen:
        if directory.is_country(chosen):
            # The chooser is a plain GET form, so it works without JavaScript.
            return RedirectResponse(f"/where-to-report/{chosen}", status_code=303)
        error = _("Choose a country from the list.")
    return render(
        request, "routing/index.html", status_code=422 if error else 200, error=error,
        listed=directory.listed_countries(), international=directory.international(),
        kind_labels=kind_labels(), phone_parts=phone_parts,
    )


@router.get("/where-to-report/{country}", response_class=HTMLResponse)
def where_to_report_in(
    request: Request, country: str, state: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    directory = _directory(request)
    # Named `place` below: `country` in templates is the visitor's own, for the safety banner.
    place = country.upper()
    if not directory.is_country(place):
        raise NotFound(_("We do not know a country with that code. Choose your country from the list on the “Where to report” page."))
    subdivisions = directory.subdivisions(place)
    chosen_state = state.strip().upper()
    state_error = ""
    if chosen_state and chosen_state not in dict(subdivisions):
        state_error = _("Choose a state from the list.")
        chosen_state = ""
    entry = directory.emergency_entry(place)
    return render(
        request, "routing/country.html",
        place=place, place_name=country_name(place), listed=directory.is_listed(place),
        place_emergency=directory.emergency(place),
        emergency_labelled=bool(entry and entry.labelled),
        groups=directory.by_kind(directory.organisations(place)),
        subdivisions=subdivisions, chosen_state=chosen_state, state_error=state_error,
        state_name=directory.subdivision_name(chosen_state) if chosen_state else "",
        state_welfare=directory.child_welfare(chosen_state) if chosen_state else (),
        state_groups=directory.by_kind(
            o for o in directory.in_subdivision(chosen_state) if o.kind != "child-welfare"
        ) if chosen_state else [],
        kind_labels=kind_labels(), phone_parts=phone_parts,
    )


@router.get("/country")
def choose_country(
    request: Request,
    c: Annotated[str, Query(max_length=100)] = "",
    next_path: Annotated[str, Query(alias="next", max_length=4000)] = "/",
) -> Response:
    """Remembers the visitor's country for the safety banner; an empty or unknown code forgets it."""
    code = c.strip().upper()
    response = RedirectResponse(safe_next(next_path), status_code=303)
    secure = get_ctx(request).settings.cookie_secure
    if _directory(request).is_country(code):
        response.set_cookie(
            COUNTRY_COOKIE, code, max_age=COOKIE_SECONDS, path="/", httponly=True,
            samesite="lax", secure=secure,
        )
    else:
        response.delete_cookie(COUNTRY_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
    return response
