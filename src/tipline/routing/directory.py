"""The directory held in memory: every page shows an emergency number and a country list, so
these are answered without touching the database."""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from babel import Locale, UnknownLocaleError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tipline import i18n
from tipline.routing import service
from tipline.routing.service import COUNTRIES, EmergencyEntry, Organisation

log = logging.getLogger(__name__)

# The order a reporter needs them: where reports are taken, who acts, who protects, who supports.
KIND_ORDER = ("hotline", "police", "child-welfare", "helpline", "ngo", "international")
# The generated tables expand number ranges; beyond a few the list stops helping anyone.
MAX_OTHER_NUMBERS = 5
REFRESH_SECONDS = 300.0

# ISO 3166-2 codes of the US states and DC; CLDR (and so babel) has no subdivision names.
US_STATES: dict[str, str] = {
    "US-AL": "Alabama", "US-AK": "Alaska", "US-AZ": "Arizona", "US-AR": "Arkansas",
    "US-CA": "California", "US-CO": "Colorado", "US-CT": "Connecticut", "US-DE": "Delaware",
    "US-DC": "District of Columbia", "US-FL": "Florida", "US-GA": "Georgia", "US-HI": "Hawaii",
    "US-ID": "Idaho", "US-IL": "Illinois", "US-IN": "Indiana", "US-IA": "Iowa",
    "US-KS": "Kansas", "US-KY": "Kentucky", "US-LA": "Louisiana", "US-ME": "Maine",
    "US-MD": "Maryland", "US-MA": "Massachusetts", "US-MI": "Michigan", "US-MN": "Minnesota",
    "US-MS": "Mississippi", "US-MO": "Missouri", "US-MT": "Montana", "US-NE": "Nebraska",
    "US-NV": "Nevada", "US-NH": "New Hampshire", "US-NJ": "New Jersey", "US-NM": "New Mexico",
    "US-NY": "New York", "US-NC": "North Carolina", "US-ND": "North Dakota", "US-OH": "Ohio",
    "US-OK": "Oklahoma", "US-OR": "Oregon", "US-PA": "Pennsylvania", "US-RI": "Rhode Island",
    "US-SC": "South Carolina", "US-SD": "South Dakota", "US-TN": "Tennessee", "US-TX": "Texas",
    "US-UT": "Utah", "US-VT": "Vermont", "US-VA": "Virginia", "US-WA": "Washington",
    "US-WV": "West Virginia", "US-WI": "Wisconsin", "US-WY": "Wyoming",
}
SUBDIVISION_NAMES: dict[str, dict[str, str]] = {"US": US_STATES}


@dataclass(frozen=True)
class Emergency:
    country: str
    country_name: str
    number: str
    others: tuple[str, ...]


@dataclass(frozen=True)
class _Snapshot:
    national: dict[str, tuple[Organisation, ...]] = field(default_factory=dict)
    regional: dict[str, tuple[Organisation, ...]] = field(default_factory=dict)
    international: tuple[Organisation, ...] = ()
    emergency: dict[str, EmergencyEntry] = field(default_factory=dict)


def _display_order(orgs: Iterable[Organisation]) -> tuple[Organisation, ...]:
    # Confirmed entries first, so the first thing read is the most reliable.
    return tuple(sorted(orgs, key=lambda o: (KIND_ORDER.index(o.kind), o.verify, o.name.casefold())))


def _build(orgs: Iterable[Organisation], numbers: Iterable[EmergencyEntry]) -> _Snapshot:
    national: dict[str, list[Organisation]] = {}
    regional: dict[str, list[Organisation]] = {}
    international: list[Organisation] = []
    for org in orgs:
        if org.scope or org.country is None:
            international.append(org)
        elif org.subdivisions:
            for code in org.subdivisions:
                regional.setdefault(code, []).append(org)
        else:
            national.setdefault(org.country, []).append(org)
    return _Snapshot(
        national={c: _display_order(v) for c, v in national.items()},
        regional={c: _display_order(v) for c, v in regional.items()},
        international=_display_order(international),
        emergency={e.country: e for e in numbers},
    )


def active_locale() -> str:
    """The locale whose translations are active for this request."""
    locale = i18n.current_locale()
    # The pseudo-locale has no country names of its own.
    return i18n.DEFAULT_LOCALE if locale == i18n.PSEUDO_LOCALE else locale


@cache
def _territory_names(locale: str) -> dict[str, str]:
    try:
        names = Locale.parse(locale.replace("-", "_")).territories
    except (UnknownLocaleError, ValueError):
        names = Locale("en").territories
    english = Locale("en").territories
    return {code: str(names.get(code) or english.get(code) or code) for code in COUNTRIES}


def _sort_key(name: str) -> str:
    # Ignore accents so "Åland" sorts with the other A's.
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@cache
def _choices(locale: str) -> tuple[tuple[str, str], ...]:
    names = _territory_names(locale)
    return tuple(sorted(names.items(), key=lambda item: (_sort_key(item[1]), item[0])))


def country_name(code: str, locale: str | None = None) -> str:
    return _territory_names(locale or active_locale()).get(code, code)


class DirectoryCache:
    def __init__(self, sessions: sessionmaker[Session], *, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.sessions = sessions
        self.refresh_seconds = refresh_seconds
        self._snapshot = _Snapshot()
        self._loaded_at: float | None = None

    def reload(self) -> None:
        """Reads the directory tables. Until the first import they are empty, and the bundled
        file stands in so the emergency number is never missing."""
        with self.sessions() as session:
            orgs = service.list_organisations(session)
            numbers = service.list_emergency_numbers(session)
        if not orgs and not numbers:
            data = service.read_directory(service.bundled_directory())
            orgs, numbers = list(data.organisations), list(data.emergency)
        # One assignment, so a request in another thread sees the old or the new snapshot whole.
        self._snapshot = _build(orgs, numbers)
        self._loaded_at = time.monotonic()

    def _current(self) -> _Snapshot:
        if self._loaded_at is None:
            self.reload()
        elif time.monotonic() - self._loaded_at > self.refresh_seconds:
            # Picks up an import made from the command line while the server runs; a busy or
            # unreachable database must not take the emergency number off every page.
            try:
                self.reload()
            except SQLAlchemyError:
                log.warning("directory refresh failed; keeping the loaded copy", exc_info=True)
                self._loaded_at = time.monotonic()
        return self._snapshot

    def emergency(self, country: str) -> Emergency | None:
        entry = self._current().emergency.get(country.upper())
        if entry is None:
            return None
        return Emergency(
            country=entry.country, country_name=country_name(entry.country), number=entry.primary,
            others=entry.others[:MAX_OTHER_NUMBERS],
        )

    def emergency_entry(self, country: str) -> EmergencyEntry | None:
        return self._current().emergency.get(country.upper())

    def country_choices(self, locale: str | None = None) -> list[tuple[str, str]]:
        return list(_choices(locale or active_locale()))

    def is_country(self, code: str) -> bool:
        return code in COUNTRIES

    def is_listed(self, country: str) -> bool:
        """Whether the directory names any organisation in the country."""
        snapshot = self._current()
        return country in snapshot.national or any(
            code[:2] == country for code in snapshot.regional
        )

    def listed_countries(self, locale: str | None = None) -> list[tuple[str, str]]:
        return [(code, name) for code, name in _choices(locale or active_locale()) if self.is_listed(code)]

    def organisations(self, country: str) -> tuple[Organisation, ...]:
        """Country-wide entries; entries for one state or region come from `in_subdivision`."""
        return self._current().national.get(country, ())

    def by_kind(self, orgs: Iterable[Organisation]) -> list[tuple[str, tuple[Organisation, ...]]]:
        grouped: dict[str, list[Organisation]] = {}
        for org in orgs:
            grouped.setdefault(org.kind, []).append(org)
        return [(kind, tuple(grouped[kind])) for kind in KIND_ORDER if kind in grouped]

    def international(self) -> tuple[Organisation, ...]:
        return self._current().international

    def subdivisions(self, country: str) -> list[tuple[str, str]]:
        """Subdivisions of a country that have entries of their own, sorted by name."""
        names = SUBDIVISION_NAMES.get(country, {})
        codes = [code for code in self._current().regional if code[:2] == country]
        return sorted(((code, names.get(code, code)) for code in codes), key=lambda item: item[1])

    def subdivision_name(self, code: str) -> str:
        return SUBDIVISION_NAMES.get(code[:2], {}).get(code, code)

    def in_subdivision(self, code: str) -> tuple[Organisation, ...]:
        return self._current().regional.get(code, ())

    def child_welfare(self, code: str) -> tuple[Organisation, ...]:
        """The child protection (CPS) lines for a subdivision such as US-CA."""
        return tuple(o for o in self.in_subdivision(code) if o.kind == "child-welfare")
