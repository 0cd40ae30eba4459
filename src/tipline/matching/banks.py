"""Hash banks: create them, list them with their sizes, switch them on and off, set their
PDQ threshold, and read their imports. Plain functions; the caller owns the transaction.

Imports and exports of entries live in `imports` and `exports` (they stream)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from tipline import clock
from tipline.audit import service as audit
from tipline.errors import Conflict, InvalidInput, NotFound
from tipline.matching.models import (
    BankEntry,
    BankImport,
    CategoryScheme,
    HashBank,
    HashKind,
    JobState,
)

MAX_THRESHOLD = 32  # the match index answers up to 32 bits; wider matches unrelated images
CATEGORY_LENGTH = 40

# What each scheme accepts, in its stored spelling. VICS numbers carry their current (2.0)
# meaning: 0 non-pertinent, 1 child abuse material, 2 exploitive / age difficult,
# 3 CGI or animation, 4 comparison images. "Uncategorised" is no category at all.
SCHEME_CATEGORIES: dict[CategoryScheme, tuple[str, ...]] = {
    CategoryScheme.industry: ("A1", "A2", "B1", "B2"),
    CategoryScheme.interpol: ("baseline", "national"),
    CategoryScheme.vics: ("0", "1", "2", "3", "4"),
    CategoryScheme.iwf: ("A", "B", "C"),
}


@dataclass
class BankSummary:
    bank: HashBank
    entries: dict[HashKind, int] = field(default_factory=dict)
    last_import: BankImport | None = None

    @property
    def total(self) -> int:
        return sum(self.entries.values())


def normalise_category(scheme: CategoryScheme, raw: str | None) -> str | None:
    """The stored spelling of a category, None for an empty one; InvalidInput when the
    scheme has no such category."""
    text = (raw or "").strip()
    if not text:
        return None
    if scheme is CategoryScheme.custom:
        if len(text) > CATEGORY_LENGTH:
            raise InvalidInput(f"A category is at most {CATEGORY_LENGTH} characters.",
                               field="category")
        return text
    allowed = SCHEME_CATEGORIES[scheme]
    for value in allowed:
        if text.casefold() == value.casefold():
            return value
    raise InvalidInput(
        f"{text!r} is not a category of the {scheme.value} scheme (use one of "
        f"{', '.join(allowed)}).", field="category")


def create_bank(
    session: Session,
    *,
    name: str,
    category_scheme: CategoryScheme,
    source: str = "",
    description: str = "",
    default_category: str | None = None,
    pdq_threshold: int = 31,
    actor: str,
) -> HashBank:
    name = name.strip()
    if not name or len(name) > 120:
        raise InvalidInput("A bank name of 1 to 120 characters is needed.", field="name")
    if len(source) > 200:
        raise InvalidInput("The source is at most 200 characters.", field="source")
    _check_threshold(pdq_threshold)
    category = normalise_category(category_scheme, default_category)
    if session.execute(select(HashBank.id).where(HashBank.name == name)).first() is not None:
        raise Conflict(f"A bank named {name!r} already exists.", field="name")
    now = clock.now()
    bank = HashBank(name=name, source=source.strip(), description=description.strip(),
                    category_scheme=category_scheme, default_category=category,
                    pdq_threshold=pdq_threshold, enabled=True, created_at=now, updated_at=now)
    session.add(bank)
    session.flush()
    audit.record(session, actor=actor, action="bank.create", object_type="hash_bank",
                 object_id=str(bank.id), details={"name": name, "scheme": category_scheme.value,
                                                  "threshold": pdq_threshold})
    return bank


def visible_entries() -> ColumnElement[bool]:
    """Entries that count: added without an import, or by an import that is done. An
    import's entries are committed batch by batch and appear together when it is done
    (tipline.matching.imports); matching, the index, exports and counts use this."""
    done = select(BankImport.id).where(BankImport.state == JobState.done)
    return or_(BankEntry.import_id.is_(None), BankEntry.import_id.in_(done))


def get_bank(session: Session, bank_id: uuid.UUID, *, lock: bool = False) -> HashBank:
    """`lock` holds the bank's row until commit (two imports into one bank queue on it)."""
    bank = session.get(HashBank, bank_id, with_for_update=lock)
    if bank is None:
        raise NotFound("No such hash bank.")
    return bank


def get_bank_by_name(session: Session, name: str) -> HashBank:
    bank = session.execute(select(HashBank).where(HashBank.name == name.strip())).scalar_one_or_none()
    if bank is None:
        raise NotFound(f"No hash bank named {name.strip()!r}.")
    return bank


def list_banks(session: Session) -> list[BankSummary]:
    """Every bank by name, with its number of entries of each kind and its newest import."""
    summaries = {bank.id: BankSummary(bank) for bank in
                 session.execute(select(HashBank).order_by(HashBank.name)).scalars()}
    counts = session.execute(
        select(BankEntry.bank_id, BankEntry.kind, func.count())
        .where(visible_entries()).group_by(BankEntry.bank_id, BankEntry.kind))
    for bank_id, kind, count in counts:
        summaries[bank_id].entries[kind] = count
    newest = (select(BankImport.bank_id, func.max(BankImport.started_at).label("at"))
              .group_by(BankImport.bank_id).subquery())
    latest = session.execute(select(BankImport).join(
        newest, (BankImport.bank_id == newest.c.bank_id) & (BankImport.started_at == newest.c.at)))
    for row in latest.scalars():
        summaries[row.bank_id].last_import = row
    return list(summaries.values())


def set_enabled(session: Session, bank: HashBank, enabled: bool, *, actor: str) -> HashBank:
    bank.enabled = enabled
    bank.updated_at = clock.now()
    audit.record(session, actor=actor, action="bank.enable" if enabled else "bank.disable",
                 object_type="hash_bank", object_id=str(bank.id), details={"name": bank.name})
    return bank


def set_threshold(session: Session, bank: HashBank, threshold: int, *, actor: str) -> HashBank:
    _check_threshold(threshold)
    previous = bank.pdq_threshold
    bank.pdq_threshold = threshold
    bank.updated_at = clock.now()
    audit.record(session, actor=actor, action="bank.threshold", object_type="hash_bank",
                 object_id=str(bank.id),
                 details={"name": bank.name, "from": previous, "to": threshold})
    return bank


def list_imports(session: Session, bank: HashBank) -> list[BankImport]:
    """The bank's imports, newest first."""
    return list(session.execute(
        select(BankImport).where(BankImport.bank_id == bank.id)
        .order_by(BankImport.started_at.desc(), BankImport.id)).scalars())


def get_import(session: Session, import_id: uuid.UUID) -> BankImport:
    found = session.get(BankImport, import_id)
    if found is None:
        raise NotFound("No such import.")
    return found


def _check_threshold(threshold: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or \
            not 0 <= threshold <= MAX_THRESHOLD:
        raise InvalidInput(f"The PDQ threshold is a distance from 0 to {MAX_THRESHOLD} bits "
                           "(31 is the usual one).", field="pdq_threshold")
