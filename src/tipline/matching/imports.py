"""Importing a file of known hashes into a bank.

`run_import` is a job in the sense of docs/architecture.md §3.1: it is handed a session
factory, not a session, and owns its transactions. An import must be all or nothing, yet
it must never hold the database for long (on SQLite one writer at a time: a reporter's
submission must not wait for a million-line bank file). So:

1. a short transaction records the import as running (refused while another import into
   the same bank runs);
2. each batch of entries is inserted in a transaction of its own (INSERT … ON CONFLICT DO
   NOTHING, so importing a file twice adds nothing the second time), with the import's
   progress. Entries of an import that is not done are invisible: matching, the index,
   exports and counts only see entries whose import is done (`banks.visible_entries`);
3. one short transaction marks the import done (every entry becomes visible at once) and
   audits it;
4. if anything failed, the import's entries are deleted (in batches) and the import is
   recorded as failed with the error; an import whose process died is swept the same way
   once its progress is `STALE_AFTER` old (`sweep_stale`).

Bad lines or records never fail an import: they are counted, and the first
`MAX_REJECTS` are kept on the import with their line (or record) number and the reason."""

from __future__ import annotations

import codecs
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker

from tipline import clock
from tipline.audit import service as audit
from tipline.db import transaction
from tipline.errors import Conflict, InvalidInput, TiplineError
from tipline.matching import banks
from tipline.matching.hashfiles import (
    CsvReader,
    PlainReader,
    Reader,
    Target,
)
from tipline.matching.models import BankEntry, BankImport, HashKind, JobState
from tipline.matching.vics import VicsReader

FORMATS = ("auto", "plain", "csv", "vics")
BATCH_ROWS = 10_000
MAX_REJECTS = 1_000
SQLITE_CACHE_KIB = 64 * 1024
STALE_AFTER = timedelta(minutes=10)  # no committed batch for this long: its process died
_READERS: dict[str, type[Reader]] = {"plain": PlainReader, "csv": CsvReader, "vics": VicsReader}
logger = logging.getLogger(__name__)

Progress = Callable[[int, int, int], None]
"""progress(lines_done, bytes_done, bytes_total); lines_done is the last line (or record)
number read. Called after every batch and once at the end."""

EntriesAdded = Callable[[uuid.UUID, uuid.UUID, int], None]
on_entries_added: list[EntriesAdded] = []
"""Called as hook(bank_id, import_id, first_entry_id) after an import that added entries
has committed (the matcher appends itself here). Entries of the import have import_id set;
first_entry_id is the smallest id among them. A failing hook is logged, not raised."""


@dataclass
class _Tally:
    lines: int = 0
    last: int = 0
    valid: int = 0
    added: int = 0
    first_id: int | None = None
    rejected: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, number: int, error: str, unit: str) -> None:
        self.rejected += 1
        if len(self.rejects) < MAX_REJECTS:
            self.rejects.append({unit: number, "error": error})


def describe_reject(reject: dict[str, Any]) -> str:
    """'line 12: reason' (plain, CSV) or 'record 12: reason' (VICS)."""
    unit = "record" if "record" in reject else "line"
    return f"{unit} {reject.get(unit)}: {reject.get('error', '')}"


def detect_format(path: Path, raw: BinaryIO) -> str:
    """plain, csv or vics, from the file's extension or else its first bytes."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "vics"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    head = raw.read(1 << 16)
    raw.seek(0)
    text = head.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="replace").lstrip()
    if text.startswith(("{", "[")):
        return "vics"
    first = next((line.strip() for line in text.splitlines()
                  if line.strip() and not line.strip().startswith("#")), "")
    token = first.replace("\t", " ").split(" ")[0].lower()
    if token and all(c in "0123456789abcdef" for c in token):
        return "plain"
    return "csv" if any(d in first for d in ",;\t") else "plain"


def run_import(
    sessions: sessionmaker[Session],
    *,
    bank_id: uuid.UUID,
    path: Path,
    format: str = "auto",  # noqa: A002 - the operator's word for it (CLI --format)
    kind: HashKind | None = None,
    actor: str,
    progress: Progress | None = None,
    on_note: Callable[[str], None] | None = None,
) -> BankImport:
    """Import `path` into the bank; returns the import (state done or failed).

    Returns a failed import for a file that cannot be read or parsed; raises NotFound for
    an unknown bank and InvalidInput for an unknown format before anything is recorded.
    `on_note` hears remarks for the operator (e.g. PhotoDNA columns that were ignored)."""
    if format not in FORMATS:
        raise InvalidInput(f"Unknown format {format!r} (use {', '.join(FORMATS)}).", field="format")
    with transaction(sessions) as session:
        bank = banks.get_bank(session, bank_id, lock=True)
        scheme, default_category = bank.category_scheme, bank.default_category
        running = session.execute(select(BankImport.filename).where(
            BankImport.bank_id == bank_id, BankImport.state == JobState.running)).scalar()
        if running is not None:
            raise Conflict(f"An import into this bank is still running ({running}); start this "
                           "one when it has finished.")
        now = clock.now()
        record = BankImport(
            bank_id=bank_id, filename=path.name[:300], format=format, actor=actor[:120],
            state=JobState.running, started_at=now, progress_at=now, lines=0, added=0,
            duplicates=0, rejected=0, rejects=[], notes=[], error="", rematch_total=0,
            rematch_done=0)
        session.add(record)
        session.flush()
        import_id = record.id
    tally = _Tally()
    try:
        with path.open("rb") as raw:
            resolved = detect_format(path, raw) if format == "auto" else format
            reader = _READERS[resolved](raw, Target(scheme, kind))
            _load(sessions, reader, tally, bank_id=bank_id, import_id=import_id,
                  default_category=default_category, progress=progress,
                  total=path.stat().st_size)
            with transaction(sessions) as session:
                record = _finish(session, import_id, tally, resolved, reader.notes, actor)
    except BaseException as exc:
        record = _record_failure(sessions, import_id, tally, exc, actor)
        if isinstance(exc, TiplineError | OSError):
            return record
        raise
    for note in reader.notes:
        if on_note is not None:
            on_note(note)
    if tally.first_id is not None:
        _call_hooks(bank_id, import_id, tally.first_id)
    return record


def _load(sessions: sessionmaker[Session], reader: Reader, tally: _Tally, *, bank_id: uuid.UUID,
          import_id: uuid.UUID, default_category: str | None, progress: Progress | None,
          total: int) -> None:
    """Reads the file and inserts its entries, a batch per transaction."""
    insert: _EntryInsert | None = None
    unit = "record" if isinstance(reader, VicsReader) else "line"
    batch: dict[tuple[HashKind, str], tuple[str | None, str, str | None]] = {}
    flushed_at = 0

    def flush() -> None:
        nonlocal flushed_at, insert
        flushed_at = tally.lines
        with transaction(sessions) as session:
            if batch:
                insert = insert or _EntryInsert(session, bank_id=bank_id, import_id=import_id)
                insert.widen_cache(session)
                tally.added += insert.rows(session, batch)
                batch.clear()
            session.execute(update(BankImport).where(BankImport.id == import_id).values(
                lines=tally.lines, added=tally.added, rejected=tally.rejected,
                progress_at=clock.now()))
        if progress is not None:
            progress(tally.last, reader.bytes_done, total)

    for item in reader:
        tally.lines += 1
        tally.last = item.number
        if item.error is not None:
            tally.reject(item.number, item.error, unit)
        for entry in item.entries:
            tally.valid += 1
            category = entry.category if entry.category is not None else default_category
            batch.setdefault((entry.kind, entry.value), (category, entry.label, entry.frames))
        # Lines count too, so a file of rejects or duplicates still shows progress.
        if len(batch) >= BATCH_ROWS or tally.lines - flushed_at >= BATCH_ROWS:
            flush()
    flush()
    if tally.added:
        with transaction(sessions) as session:
            tally.first_id = session.execute(
                select(func.min(BankEntry.id)).where(BankEntry.import_id == import_id)).scalar_one()


class _EntryInsert:
    """INSERT … ON CONFLICT DO NOTHING of a batch of entries, straight through the driver.

    SQLAlchemy's per-row parameter processing cost as much as the database's own work, so
    the values the same for every row (bank, import, time) are converted once by their
    column types and each row passes plain strings. SQLite takes an executemany of the
    compiled statement; PostgreSQL one statement per batch over unnest() of five arrays
    (psycopg's executemany sends a statement per row, 5x slower). Rows go in sorted by
    hash, so neighbouring keys land on the same index pages. Each batch is its own short
    transaction."""

    def __init__(self, session: Session, *, bank_id: uuid.UUID, import_id: uuid.UUID) -> None:
        dialect = session.connection().dialect
        self._sqlite = dialect.name == "sqlite"
        table = BankEntry.__table__
        assert isinstance(table, Table)
        constants = {"bank_id": bank_id, "import_id": import_id, "added_at": clock.now()}
        self._constants = tuple(_bound(table, name, value, dialect)
                                for name, value in constants.items())
        self._kinds = {kind: _bound(table, "kind", kind, dialect) for kind in HashKind}
        names = (*constants, *_PER_ROW)
        if self._sqlite:
            statement = sqlite.insert(table).values(
                {name: bindparam(f"p_{name}") for name in names}).on_conflict_do_nothing()
            compiled = statement.compile(dialect=dialect)
            order = [names.index(name.removeprefix("p_")) for name in compiled.positiontup or ()]
            assert sorted(order) == list(range(len(names)))
            self._sql, self._order = str(compiled), order
        else:
            arrays = ", ".join(f"%({name})s::{table.c[name].type.compile(dialect)}[]"
                               for name in _PER_ROW)
            # Names come from the model; every value is a bound parameter.
            self._sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608
                         f"SELECT %(bank_id)s, %(import_id)s, %(added_at)s, * FROM unnest({arrays}) "
                         "ON CONFLICT DO NOTHING")

    def widen_cache(self, session: Session) -> None:
        """SQLite's default 2 MB page cache makes every batch re-read the index pages it
        needs (an import took twice as long); the pooled connection keeps the larger cache
        (up to SQLITE_CACHE_KIB, filled only as pages are read)."""
        if self._sqlite:
            session.connection().exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")

    def rows(self, session: Session,
             batch: dict[tuple[HashKind, str], tuple[str | None, str, str | None]]) -> int:
        """Inserts the batch; returns how many rows were new."""
        rows = [(self._kinds[kind], value, *rest)
                for (kind, value), rest in sorted(batch.items(), key=_hash_value)]
        if self._sqlite:
            params: Any = [tuple([(*self._constants, *row)[i] for i in self._order])
                           for row in rows]
        else:
            columns = list(zip(*rows, strict=True))
            params = dict(zip(("bank_id", "import_id", "added_at"), self._constants, strict=True))
            params.update({name: list(columns[i]) for i, name in enumerate(_PER_ROW)})
        return int(session.connection().exec_driver_sql(self._sql, params).rowcount)


_PER_ROW = ("kind", "value", "category", "label", "frames")


def _hash_value(item: tuple[tuple[HashKind, str], object]) -> str:
    return item[0][1]


def _bound(table: Table, column: str, value: object, dialect: Dialect) -> object:
    processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return processor(value) if processor is not None else value


def _finish(session: Session, import_id: uuid.UUID, tally: _Tally, resolved: str,
            notes: list[str], actor: str) -> BankImport:
    record = session.get(BankImport, import_id)
    assert record is not None
    record.format = resolved
    record.state = JobState.done
    record.finished_at = clock.now()
    record.lines, record.added, record.duplicates = tally.lines, tally.added, tally.valid - tally.added
    record.rejected, record.rejects = tally.rejected, list(tally.rejects)
    record.notes, record.progress_at = list(notes), record.finished_at
    audit.record(session, actor=actor, action="bank.import", object_type="hash_bank",
                 object_id=str(record.bank_id),
                 details={"import": str(import_id), "file": record.filename, "format": resolved,
                          "lines": tally.lines, "added": tally.added,
                          "duplicates": record.duplicates, "rejected": tally.rejected,
                          "notes": notes})
    return record


def _record_failure(sessions: sessionmaker[Session], import_id: uuid.UUID, tally: _Tally,
                    exc: BaseException, actor: str) -> BankImport:
    if isinstance(exc, TiplineError):
        message = exc.message
    elif isinstance(exc, OSError):
        message = f"The file could not be read: {exc.strerror or exc}."
    elif isinstance(exc, KeyboardInterrupt):
        message = "The import was interrupted."
    else:
        message = f"The import stopped on an internal error ({type(exc).__name__})."
        logger.error("bank import %s failed", import_id, exc_info=exc)
    return _fail(sessions, import_id, message, actor=actor, tally=tally)


def _fail(sessions: sessionmaker[Session], import_id: uuid.UUID, message: str, *, actor: str,
          tally: _Tally | None = None) -> BankImport:
    """Remove what the import added (never visible: it was not done), then record it failed."""
    while True:
        with transaction(sessions) as session:
            ids = session.execute(select(BankEntry.id).where(BankEntry.import_id == import_id)
                                  .limit(BATCH_ROWS)).scalars().all()
            if not ids:
                break
            session.execute(delete(BankEntry).where(BankEntry.id.in_(ids)))
    with transaction(sessions) as session:
        record = session.get(BankImport, import_id)
        assert record is not None
        record.state = JobState.failed
        record.finished_at = clock.now()
        record.error = message
        record.added, record.duplicates = 0, 0
        if tally is not None:
            record.lines, record.rejected, record.rejects = tally.lines, tally.rejected, list(tally.rejects)
        audit.record(session, actor=actor, action="bank.import_failed", object_type="hash_bank",
                     object_id=str(record.bank_id),
                     details={"import": str(import_id), "file": record.filename, "error": message,
                              "lines_read": record.lines})
    return record


def sweep_stale(sessions: sessionmaker[Session]) -> int:
    """Fail the imports whose process died (no batch committed for STALE_AFTER) and remove
    their entries, so the bank is as it was and a new import into it may start."""
    with transaction(sessions) as session:
        stale = session.execute(select(BankImport.id).where(
            BankImport.state == JobState.running,
            BankImport.progress_at < clock.now() - STALE_AFTER)).scalars().all()
    for import_id in stale:
        logger.warning("bank import %s stopped without finishing; removing its entries", import_id)
        _fail(sessions, import_id, "The import stopped without finishing (its process ended).",
              actor="system:matching")
    return len(stale)


def _call_hooks(bank_id: uuid.UUID, import_id: uuid.UUID, first_id: int) -> None:
    for hook in list(on_entries_added):
        try:
            hook(bank_id, import_id, first_id)
        except Exception:
            logger.exception("a hook after bank import %s failed", import_id)
