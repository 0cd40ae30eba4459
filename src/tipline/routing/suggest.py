"""Which agency should handle a report: suggested from where the child is, then where the
suspect is, then where the reporter is, each suggestion with its reason written down.

Agencies cover ISO codes ("US" for a whole country, "US-OH" for one state). The place a
reporter gives for the child is free text ("Ohio", "OH", "Cleveland, Ohio"); for the
countries the directory has subdivision names for, it is mapped to an ISO 3166-2 code.
A region-level agency ranks above a country-level one, and for the child's place the
child-welfare service is suggested next to the police, because a child may need protection.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy.orm import Session

from tipline.accounts import service as accounts
from tipline.accounts.models import Agency
from tipline.i18n import _
from tipline.reports.models import Report
from tipline.routing.directory import SUBDIVISION_NAMES, country_name
from tipline.routing.service import COUNTRIES

BASES = ("child", "suspect", "reporter")
CHILD_WELFARE = "child-welfare"
# Who acts first: the police, then a hotline, then the child's protection; others after.
KIND_RANK = {"police": 0, "hotline": 1, CHILD_WELFARE: 2}

_ISO_SUBDIVISION = re.compile(r"([A-Z]{2})-([A-Z0-9]{1,3})")
_PARTS = re.compile(r"[,;/()\n]+")
_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Suggestion:
    agency_id: uuid.UUID
    agency_name: str
    kind: str
    reason: str
    basis: str  # "child" | "suspect" | "reporter"


@dataclass(frozen=True)
class Place:
    """A place the report names, and the words that explain where it came from."""

    basis: str
    country: str
    region: str | None
    label: str


# --- free-text regions to ISO codes -----------------------------------------------------------

def _normal(text: str) -> str:
    return " ".join(text.replace(".", "").casefold().split())


def region_code(country: str | None, text: str) -> str | None:
    """The ISO 3166-2 code named by free text such as "Ohio", "OH", "us-oh" or
    "Cleveland, Ohio" (the last place named wins: "Kansas City, Missouri" is US-MO), or
    None when nothing in it names a known subdivision of `country`."""
    if not country or not text.strip():
        return None
    iso = _ISO_SUBDIVISION.fullmatch(text.strip().upper())
    if iso:
        return iso.group(0) if iso.group(1) == country else None
    names = SUBDIVISION_NAMES.get(country)
    if not names:
        return None
    by_name = {_normal(name): code for code, name in names.items()}
    by_short = {code.split("-", 1)[1].casefold(): code for code in names}
    # Whole parts first, from the end: "Washington, DC" is the District, not the state.
    for part in reversed(_PARTS.split(text)):
        key = _normal(part)
        if key in by_name:
            return by_name[key]
        if key in by_short:
            return by_short[key]
    return _code_inside(text, by_name, by_short)


def _code_inside(text: str, by_name: dict[str, str], by_short: dict[str, str]) -> str | None:
    """A name inside longer text ("near Columbus Ohio"), or a capitalised postal code
    ("Columbus OH 43004"); the rightmost wins, and the longer name at the same place
    ("West Virginia" over "Virginia")."""
    normal = _normal(text)
    best: tuple[int, int, str] | None = None
    for name, code in by_name.items():
        for match in re.finditer(rf"\b{re.escape(name)}\b", normal):
            candidate = (match.end(), len(name), code)
            if best is None or candidate > best:
                best = candidate
    if best is not None:
        return best[2]
    # Two capital letters only: "in", "me" and "or" are words, "IN", "ME" and "OR" states.
    for word in reversed(_WORD.findall(text.replace(".", ""))):
        if len(word) == 2 and word.isupper() and word.casefold() in by_short:
            return by_short[word.casefold()]
    return None


def _place_words(country: str, region: str | None) -> str:
    if region:
        names = SUBDIVISION_NAMES.get(country, {})
        return f"{region} ({names[region]})" if region in names else region
    return f"{country} ({country_name(country)})"


# --- the places a report names ----------------------------------------------------------------

def _child_place(report: Report) -> Place | None:
    if not report.child_country:
        return None
    given = (report.child_region or "").strip()
    region = region_code(report.child_country, given)
    where = _place_words(report.child_country, region)
    label = _("child's location: %(where)s") % {"where": where}
    if given and region and _normal(given) not in _spellings(report.child_country, region):
        # Say what the reporter wrote, so a wrong reading is easy to spot.
        label = _("child's location: %(where)s, given as “%(given)s”") % {"where": where, "given": given[:100]}
    return Place("child", report.child_country, region, label)


def _spellings(country: str, region: str) -> set[str]:
    name = SUBDIVISION_NAMES.get(country, {}).get(region, "")
    return {_normal(region), _normal(region.split("-", 1)[1]), _normal(name)}


def _suspect_place(report: Report) -> Place | None:
    suspect: dict[str, Any] = report.suspect or {}
    country = str(suspect.get("country") or "").strip().upper()
    if country in COUNTRIES:
        region = region_code(country, str(suspect.get("region") or ""))
        return Place("suspect", country, region,
                     _("suspect's location: %(where)s") % {"where": _place_words(country, region)})
    # An international number says where it was issued: a hint, and said as one.
    for phone in suspect.get("phones") or []:
        code = _phone_country(str(phone))
        if code:
            return Place("suspect", code, None,
                         _("suspect's phone number is from %(where)s") % {"where": _place_words(code, None)})
    return None


def _phone_country(phone: str) -> str | None:
    if not phone.strip().startswith("+"):
        return None
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    # The calling code's main country when the number itself is not a valid one.
    code = phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(number.country_code) if number.country_code else None)
    return code if code in COUNTRIES else None


def _reporter_place(report: Report) -> Place | None:
    if not report.reporter_country:
        return None
    return Place("reporter", report.reporter_country, None,
                 _("reporter's location: %(where)s") % {"where": _place_words(report.reporter_country, None)})


def places(report: Report) -> list[Place]:
    """The child's, the suspect's and the reporter's place, in that order, where known."""
    found = (_child_place(report), _suspect_place(report), _reporter_place(report))
    return [place for place in found if place is not None]


# --- matching agencies ------------------------------------------------------------------------

def _level(agency: Agency, place: Place) -> int | None:
    """0 when the agency covers the place's region, 1 when it covers the whole country."""
    codes = set(agency.jurisdictions or ())
    if place.region and place.region in codes:
        return 0
    if place.country in codes:
        return 1
    return None


def _reason(agency: Agency, place: Place, level: int) -> str:
    covers = place.region if level == 0 and place.region else place.country
    text = _("%(place)s; the agency covers %(code)s") % {"place": place.label, "code": covers}
    if agency.kind == CHILD_WELFARE:
        text += "; " + _("a child may need protection there")
    return text


def suggest_agencies(session: Session, report: Report) -> list[Suggestion]:
    """Active agencies for the report, best first: the child's place before the suspect's
    before the reporter's; within one, region-level before country-level, police before
    hotlines before child welfare. Each agency appears once, under its strongest reason.
    Child-welfare services are suggested only for the child's own place."""
    agencies = accounts.list_agencies(session, active_only=True)
    ranked: list[tuple[tuple[int, int, int, str], Suggestion]] = []
    seen: set[uuid.UUID] = set()
    for order, place in enumerate(places(report)):
        for agency in agencies:
            if agency.id in seen or (agency.kind == CHILD_WELFARE and place.basis != "child"):
                continue
            level = _level(agency, place)
            if level is None:
                continue
            seen.add(agency.id)
            key = (order, level, KIND_RANK.get(agency.kind, len(KIND_RANK)), agency.name.casefold())
            ranked.append((key, Suggestion(agency.id, agency.name, agency.kind,
                                           _reason(agency, place, level), place.basis)))
    ranked.sort(key=lambda item: item[0])
    return [suggestion for _key, suggestion in ranked]
