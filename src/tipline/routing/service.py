"""The directory of organisations and emergency numbers: checking the file, importing it,
and reading it back."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline import clock
from tipline.audit import service as audit
from tipline.errors import InvalidInput
from tipline.i18n import _
from tipline.reports.schemas import COUNTRY_CODES
from tipline.routing.models import DirectoryOrganisation, EmergencyNumbers

# Babel's territory list includes groupings and test codes; nobody lives in those.
COUNTRIES: frozenset[str] = COUNTRY_CODES - {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"}
KINDS = ("police", "hotline", "child-welfare", "helpline", "ngo", "international")
CONFIDENCE = ("high", "medium", "low")
# Used where nobody has said which number to call first.
PRIMARY_PREFERENCE = ("112", "911", "999", "000")
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PROBLEMS_SHOWN = 100

ProgressFn = Callable[[int, int], None]

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")
_SUBDIVISION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")
_DIALLED = re.compile(r"[0-9]{2,8}")


@dataclass(frozen=True)
class Organisation:
    """One directory entry, detached from any database session."""

    id: str
    country: str | None
    scope: str | None
    name: str
    kind: str
    handles: tuple[str, ...]
    url: str | None
    report_url: str | None
    phone: str | None
    anonymous_reports: bool | None
    notes: str
    source: str
    confidence: str
    subdivisions: tuple[str, ...]
    coverage: str | None
    verify: bool

    def columns(self) -> dict[str, Any]:
        values = asdict(self)
        values["handles"] = list(self.handles)
        values["subdivisions"] = list(self.subdivisions)
        return values


ORG_FIELDS = tuple(f.name for f in fields(Organisation))
_REQUIRED = ("id", "country", "name", "kind", "confidence", "verify")


@dataclass(frozen=True)
class EmergencyEntry:
    country: str
    numbers: tuple[str, ...]
    primary: str
    labelled: bool

    @property
    def others(self) -> tuple[str, ...]:
        return tuple(n for n in self.numbers if n != self.primary)


@dataclass(frozen=True)
class DirectoryData:
    organisations: tuple[Organisation, ...]
    emergency: tuple[EmergencyEntry, ...]
    sha256: str


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    removed: int
    unchanged: int
    emergency_added: int
    emergency_updated: int
    emergency_removed: int
    emergency_unchanged: int

    def counts(self) -> dict[str, int]:
        return asdict(self)


# ---------------------------------------------------------------- checking the file


class _Problems:
    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def add(self, where: str, text: str) -> None:
        self.found.setdefault(where, text)

    def raise_if_any(self, name: str) -> None:
        if not self.found:
            return
        shown = dict(list(self.found.items())[:MAX_PROBLEMS_SHOWN])
        raise InvalidInput(
            _("%(file)s has %(count)d problem(s); nothing was changed.")
            % {"file": name, "count": len(self.found)},
            errors=shown,
        )


def _text(value: Any, *, limit: int, required: bool = False) -> str | None:
    """Returns a problem description, or None when the value is acceptable."""
    if value is None:
        return _("must not be empty") if required else None
    if not isinstance(value, str):
        return _("must be text")
    if required and not value.strip():
        return _("must not be empty")
    if len(value) > limit:
        return _("is longer than %(limit)d characters") % {"limit": limit}
    return None


def _link(value: Any) -> str | None:
    problem = _text(value, limit=500)
    if problem or value is None:
        return problem
    # Shown as links on public pages, so only web addresses may pass.
    if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
        return _("must be a web address starting with https://")
    return None


def _string_list(value: Any, pattern: re.Pattern[str] | None = None) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return _("must be a list of text values")
    if pattern and not all(pattern.fullmatch(v) for v in value):
        return _("must be a list of ISO 3166-2 codes such as US-CA")
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "id": lambda v: _text(v, limit=80, required=True)
    or (None if _ID.fullmatch(v) else _("must be lower-case letters, digits and hyphens")),
    "country": lambda v: None if v is None or v in COUNTRIES
    else _("must be an ISO 3166-1 alpha-2 code such as GB, or null"),
    "scope": lambda v: _text(v, limit=40),
    "name": lambda v: _text(v, limit=300, required=True),
    "kind": lambda v: None if v in KINDS else _("must be one of: %(kinds)s") % {"kinds": ", ".join(KINDS)},
    "handles": _string_list,
    "url": _link,
    "report_url": _link,
    "phone": lambda v: _text(v, limit=200),
    "anonymous_reports": lambda v: None if v is None or isinstance(v, bool) else _("must be true, false or null"),
    "notes": lambda v: _text(v, limit=5000),
    "source": lambda v: _text(v, limit=5000),
    "confidence": lambda v: None if v in CONFIDENCE else _("must be one of: high, medium, low"),
    "subdivisions": lambda v: _string_list(v, _SUBDIVISION),
    "coverage": lambda v: _text(v, limit=5000),
    "verify": lambda v: None if isinstance(v, bool) else _("must be true or false"),
}


def _cross_check(entry: dict[str, Any], label: str, problems: _Problems) -> None:
    if entry["country"] is None and not entry["scope"]:
        problems.add(f"{label}.country", _("may be null only when the entry has a scope"))
    wrong = [s for s in entry["subdivisions"] if s[:2] != entry["country"]]
    if wrong:
        problems.add(f"{label}.subdivisions", _("%(codes)s not in the entry's country")
                     % {"codes": ", ".join(wrong)})
    # An unconfirmed entry must never be presented as confirmed.
    if entry["confidence"] != "high" and entry["verify"] is not True:
        problems.add(f"{label}.verify", _("must be true unless confidence is high"))


def _check_organisation(index: int, raw: Any, problems: _Problems) -> Organisation | None:
    where = f"organisations[{index}]"
    if not isinstance(raw, dict):
        problems.add(where, _("must be an object"))
        return None
    ident = raw.get("id")
    label = f"{where} (id {ident!r})" if isinstance(ident, str) else where
    for key in sorted(set(raw) - set(ORG_FIELDS)):
        problems.add(f"{label}.{key}", _("is not a known field"))
    found = len(problems.found)
    for name, check in _CHECKS.items():
        if name not in raw and name in _REQUIRED:
            problems.add(f"{label}.{name}", _("is missing"))
            continue
        problem = check(raw.get(name, [] if name in ("handles", "subdivisions") else None))
        if problem:
            problems.add(f"{label}.{name}", problem)
    if len(problems.found) > found:
        return None
    values: dict[str, Any] = {name: raw.get(name) for name in ORG_FIELDS}
    values["handles"] = tuple(raw.get("handles", []))
    values["subdivisions"] = tuple(raw.get("subdivisions", []))
    values["notes"] = values["notes"] or ""
    values["source"] = values["source"] or ""
    _cross_check(values, label, problems)
    return Organisation(**values)


def _check_organisations(raw: Any, problems: _Problems) -> list[Organisation]:
    if not isinstance(raw, list):
        problems.add("organisations", _("must be a list"))
        return []
    result: list[Organisation] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        entry = _check_organisation(index, item, problems)
        if entry is None:
            continue
        if entry.id in seen:
            problems.add(f"organisations[{index}] (id {entry.id!r}).id", _("is used twice"))
        seen.add(entry.id)
        result.append(entry)
    return result


def choose_primary(numbers: Iterable[str]) -> str:
    listed = list(numbers)
    for preferred in PRIMARY_PREFERENCE:
        if preferred in listed:
            return preferred
    return listed[0]


def _check_emergency(document: Mapping[str, Any], problems: _Problems) -> list[EmergencyEntry]:
    section = document.get("emergency_numbers_by_region")
    numbers = section.get("numbers") if isinstance(section, dict) else None
    if not isinstance(numbers, dict):
        problems.add("emergency_numbers_by_region.numbers", _("must be an object of country: [numbers]"))
        return []
    labels = document.get("emergency_primary", {})
    if not isinstance(labels, dict):
        problems.add("emergency_primary", _("must be an object of country: number"))
        labels = {}
    for code, number in labels.items():
        if code not in numbers:
            problems.add(f"emergency_primary.{code}", _("has no list in emergency_numbers_by_region"))
        elif not isinstance(number, str) or not _DIALLED.fullmatch(number):
            problems.add(f"emergency_primary.{code}", _("must be a number of 2 to 8 digits"))
    result: list[EmergencyEntry] = []
    for code, listed in sorted(numbers.items()):
        where = f"emergency_numbers_by_region.numbers.{code}"
        if code not in COUNTRIES:
            problems.add(where, _("is not an ISO 3166-1 alpha-2 country code"))
        elif not isinstance(listed, list) or not listed or not all(
            isinstance(n, str) and _DIALLED.fullmatch(n) for n in listed
        ):
            problems.add(where, _("must be a non-empty list of numbers of 2 to 8 digits"))
        else:
            result.append(_emergency_entry(code, listed, labels.get(code)))
    return result


def _emergency_entry(country: str, listed: list[str], label: Any) -> EmergencyEntry:
    if isinstance(label, str):
        # A hand-chosen number may be missing from the generated list; it still goes first.
        numbers = tuple(dict.fromkeys([label, *listed]))
        return EmergencyEntry(country, numbers, label, labelled=True)
    return EmergencyEntry(country, tuple(dict.fromkeys(listed)), choose_primary(listed), labelled=False)


def parse_directory(content: bytes, name: str) -> DirectoryData:
    """Checks the whole document; raises InvalidInput naming every bad entry and field."""
    problems = _Problems()
    try:
        document = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInput(_("%(file)s is not UTF-8 text (byte %(at)d).") % {"file": name, "at": exc.start}) from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            _("%(file)s is not valid JSON: %(why)s at line %(line)d, column %(col)d.")
            % {"file": name, "why": exc.msg, "line": exc.lineno, "col": exc.colno}
        ) from exc
    if not isinstance(document, dict):
        raise InvalidInput(_("%(file)s must contain a JSON object.") % {"file": name})
    organisations = _check_organisations(document.get("organisations"), problems)
    emergency = _check_emergency(document, problems)
    problems.raise_if_any(name)
    return DirectoryData(tuple(organisations), tuple(emergency), hashlib.sha256(content).hexdigest())


def read_directory(path: Path | Traversable) -> DirectoryData:
    try:
        with path.open("rb") as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(_("Cannot read %(file)s: %(why)s") % {"file": path.name, "why": exc.strerror}) from exc
    if len(content) > MAX_FILE_BYTES:
        raise InvalidInput(_("%(file)s is larger than 20 MB.") % {"file": path.name})
    return parse_directory(content, path.name)


def bundled_directory() -> Traversable:
    return resources.files("tipline.routing") / "data" / "directory.json"


# ---------------------------------------------------------------- importing


def _sync_organisations(
    session: Session, entries: tuple[Organisation, ...], tick: Callable[[], None]
) -> tuple[int, int, int, int]:
    now = clock.now()
    existing = {row.id: row for row in session.scalars(select(DirectoryOrganisation))}
    added = updated = unchanged = 0
    for entry in entries:
        row = existing.pop(entry.id, None)
        values = entry.columns()
        if row is None:
            session.add(DirectoryOrganisation(**values, updated_at=now))
            added += 1
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            updated += 1
        else:
            unchanged += 1
        tick()
    for row in existing.values():
        session.delete(row)
    return added, updated, len(existing), unchanged


def _sync_emergency(
    session: Session, entries: tuple[EmergencyEntry, ...], tick: Callable[[], None]
) -> tuple[int, int, int, int]:
    existing = {row.country: row for row in session.scalars(select(EmergencyNumbers))}
    added = updated = unchanged = 0
    for entry in entries:
        row = existing.pop(entry.country, None)
        values: dict[str, Any] = {
            "numbers": list(entry.numbers), "primary": entry.primary, "labelled": entry.labelled,
        }
        if row is None:
            session.add(EmergencyNumbers(country=entry.country, **values))
            added += 1
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            updated += 1
        else:
            unchanged += 1
        tick()
    for row in existing.values():
        session.delete(row)
    return added, updated, len(existing), unchanged


def import_directory(
    session: Session,
    path: Path | Traversable,
    *,
    actor: str = "system",
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Makes the tables match the file: adds, updates and removes rows. The whole file is
    checked before anything is touched, and the caller commits."""
    data = read_directory(path)
    total = len(data.organisations) + len(data.emergency)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    orgs = _sync_organisations(session, data.organisations, tick)
    numbers = _sync_emergency(session, data.emergency, tick)
    session.flush()
    result = ImportResult(*orgs, *numbers)
    audit.record(
        session, actor=actor, action="directory.import", object_type="directory",
        object_id="directory", details={**result.counts(), "sha256": data.sha256, "file": path.name},
    )
    return result


# ---------------------------------------------------------------- reading


def _organisation(row: DirectoryOrganisation) -> Organisation:
    values = {name: getattr(row, name) for name in ORG_FIELDS}
    values["handles"] = tuple(row.handles or ())
    values["subdivisions"] = tuple(row.subdivisions or ())
    return Organisation(**values)


def list_organisations(session: Session, *, country: str | None = None) -> list[Organisation]:
    query = select(DirectoryOrganisation).order_by(DirectoryOrganisation.country, DirectoryOrganisation.name)
    if country is not None:
        query = query.where(DirectoryOrganisation.country == country)
    return [_organisation(row) for row in session.scalars(query)]


def list_emergency_numbers(session: Session) -> list[EmergencyEntry]:
    rows = session.scalars(select(EmergencyNumbers).order_by(EmergencyNumbers.country))
    return [EmergencyEntry(r.country, tuple(r.numbers), r.primary, r.labelled) for r in rows]


def emergency_numbers(session: Session, country: str) -> EmergencyEntry | None:
    row = session.get(EmergencyNumbers, country)
    return None if row is None else EmergencyEntry(row.country, tuple(row.numbers), row.primary, row.labelled)
