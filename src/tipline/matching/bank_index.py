"""The process-wide match index: every bank's PDQ entries in a PdqIndex (exact range
search) and its vPDQ entries' frames, loaded from the database by entry id and kept up to
date by the hashing worker (tipline.matching.worker).

Entries of disabled banks are loaded too, so switching a bank on needs no reload; the
matcher filters hits by bank at query time. Loading reads the primary key in pages, each
in a short transaction, and builds one index segment for the whole first load.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Table, TextClause, and_, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tipline.matching.hashing import parse_frames
from tipline.matching.index import HASH_BYTES, MAX_DISTANCE, Ids, PdqIndex, PdqMatch, stack_hashes
from tipline.matching.models import BankEntry, HashKind
from tipline.matching.perceptual import VpdqFrame

# Entries read per query while loading, each page in a short transaction of its own: on
# SQLite every transaction holds the write lock, and intake must not wait long for it.
LOAD_PAGE = 50_000

Opener = Callable[[], AbstractContextManager[Session]]


class MatchIndex:
    """PDQ entries in a PdqIndex and vPDQ entries' frames, loaded by entry id.

    `refresh` loads the entries numbered above the highest one loaded. Ids are handed out
    before commit, so on PostgreSQL an import that commits after a later-numbered one
    would be skipped; `load_import` (run before an import's retro-matching) loads such an
    import. (Queries drop duplicate hits, should an id ever be loaded twice.)"""

    def __init__(self) -> None:
        self._pdq = PdqIndex()
        self._vpdq: dict[int, tuple[uuid.UUID, tuple[VpdqFrame, ...]]] = {}
        self._upto = 0
        self._lock = threading.Lock()
        self.ready = threading.Event()

    def __len__(self) -> int:
        return len(self._pdq) + len(self._vpdq)

    def refresh(self, open_session: Opener, *,
                cancelled: Callable[[], bool] = lambda: False) -> int:
        """Load entries added since the last call (all of them the first time), a page per
        transaction so that loading never holds SQLite's write lock for long. Answers how
        many were loaded (none when `cancelled` said so between two pages)."""
        with self._lock:
            with open_session() as session:
                highest = session.execute(select(func.max(BankEntry.id))).scalar() or 0
                videos = _vpdq_rows(session, BankEntry.id > self._upto, BankEntry.id <= highest)
            self._add_vpdq(videos)
            pages: list[tuple[Ids, NDArray[np.uint8]]] = []
            after = self._upto
            while after < highest:
                with open_session() as session:
                    connection = session.connection()
                    last, count, ids, values = connection.execute(
                        _page_query(connection.dialect.name),
                        {"after": after, "highest": highest, "page": LOAD_PAGE}).one()
                if ids:
                    pages.append(_page_arrays(ids, values))
                if count < LOAD_PAGE:
                    break
                if cancelled():
                    return 0
                after = last
            self._add_pdq(pages, whole=self._upto == 0)
            self._upto = max(self._upto, highest)
        self.ready.set()
        return len(videos) + sum(len(ids) for ids, _ in pages)

    def load_import(self, session: Session, import_id: uuid.UUID) -> int:
        """Make sure every PDQ and vPDQ entry of one import is loaded. An import commits
        batch by batch in id order, so a refresh saw none of it, a prefix, or all of it: its
        first and last PDQ entries tell whether anything is missing. (On PostgreSQL, a
        batch of another import committing out of id order in the middle of this one could
        leave a gap these ends do not show; the entries are loaded at the next start.)"""
        with self._lock:
            mine = and_(BankEntry.import_id == import_id, BankEntry.id <= self._upto)
            ends = [session.execute(select(BankEntry.id, BankEntry.value)
                                    .where(mine, BankEntry.kind == HashKind.pdq)
                                    .order_by(order).limit(1)).first()
                    for order in (BankEntry.id, BankEntry.id.desc())]
            loaded = 0
            if any(end is not None and not self._has(end[0], end[1]) for end in ends):
                rows = session.connection().execute(
                    select(_ENTRY.c.id, _ENTRY.c.value)
                    .where(_ENTRY.c.import_id == import_id, _ENTRY.c.id <= self._upto,
                           _ENTRY.c.kind == HashKind.pdq.value)).all()
                self._add_pdq([_pdq_arrays(rows)], whole=False)
                loaded += len(rows)
            videos = [row for row in _vpdq_rows(session, mine) if row[0] not in self._vpdq]
            self._add_vpdq(videos)
            return loaded + len(videos)

    def _has(self, entry_id: int, value: str) -> bool:
        return any(found == entry_id for found, _ in self._pdq.query(bytes.fromhex(value), 0))

    def _add_pdq(self, pages: list[tuple[Ids, NDArray[np.uint8]]], *, whole: bool) -> None:
        if not pages:
            return
        ids = np.concatenate([ids for ids, _ in pages])
        hashes = np.concatenate([hashes for _, hashes in pages])
        if whole and not len(self._pdq):
            self._pdq = PdqIndex.build(ids, hashes)  # one segment, no merging on the way
        else:
            self._pdq.add(ids, hashes)

    def _add_vpdq(self, rows: Sequence[Any]) -> None:
        for entry_id, bank_id, frames in rows:
            if frames:
                self._vpdq[entry_id] = (bank_id, tuple(parse_frames(frames)))

    def pdq_hits(self, hashes: Sequence[bytes], max_distance: int) -> list[list[PdqMatch]]:
        if not hashes:
            return []
        found = self._pdq.query_batch(stack_hashes(hashes), min(max_distance, MAX_DISTANCE))
        return [_unique(matches) for matches in found]

    def vpdq_entries(self) -> list[tuple[int, uuid.UUID, tuple[VpdqFrame, ...]]]:
        return [(entry_id, bank_id, frames)
                for entry_id, (bank_id, frames) in list(self._vpdq.items())]


_ENTRY = cast(Table, BankEntry.__table__)


def _pdq_arrays(rows: Sequence[Any]) -> tuple[Ids, NDArray[np.uint8]]:
    ids = np.fromiter((row[0] for row in rows), np.int64, len(rows))
    hashes = np.frombuffer(bytes.fromhex("".join(row[1] for row in rows)), np.uint8)
    return ids, hashes.reshape(-1, HASH_BYTES)


# One page of entries by id, its PDQ ids and hex values each joined into one string by the
# database: a row per entry through the driver (a Python tuple, an int and a str each) was
# most of the time to load millions of entries. Both strings are built in the same pass
# over the same rows, so the n-th id belongs to the n-th value. The page is read by id
# alone (kind is tested per row): with a condition on kind, SQLite walks the (kind, value)
# index and sorts each page, and PostgreSQL may scan the table.
_PAGE_SQLITE = text(
    "SELECT max(id), count(*), group_concat(CASE WHEN kind = 'pdq' THEN id END, ','), "
    "group_concat(CASE WHEN kind = 'pdq' THEN value END, '') FROM (SELECT id, kind, value "
    "FROM hash_bank_entry WHERE id > :after AND id <= :highest ORDER BY id LIMIT :page)")
_PAGE_POSTGRESQL = text(
    "SELECT max(id), count(*), string_agg(CASE WHEN kind = 'pdq' THEN id::text END, ',' ORDER BY id), "
    "string_agg(CASE WHEN kind = 'pdq' THEN value END, '' ORDER BY id) FROM (SELECT id, kind, value "
    "FROM hash_bank_entry WHERE id > :after AND id <= :highest ORDER BY id LIMIT :page) AS page")


def _page_query(dialect: str) -> TextClause:
    return _PAGE_SQLITE if dialect == "sqlite" else _PAGE_POSTGRESQL


def _page_arrays(ids: str, values: str) -> tuple[Ids, NDArray[np.uint8]]:
    numbers = np.array(ids.split(","), dtype=np.int64)
    hashes = np.frombuffer(bytes.fromhex(values), np.uint8).reshape(-1, HASH_BYTES)
    if len(numbers) != len(hashes):
        raise ValueError("a page of PDQ entries did not parse (ids and values differ in number)")
    return numbers, hashes


def _vpdq_rows(session: Session, *conditions: Any) -> list[Any]:
    return list(session.execute(
        select(BankEntry.id, BankEntry.bank_id, BankEntry.frames)
        .where(BankEntry.kind == HashKind.vpdq, *conditions)).all())


def _unique(matches: list[PdqMatch]) -> list[PdqMatch]:
    seen: set[int] = set()
    unique = []
    for match in matches:
        if match[0] not in seen:
            seen.add(match[0])
            unique.append(match)
    return unique


# One index per database per process: the worker registers the one it keeps fresh.
_INDEXES: weakref.WeakKeyDictionary[Engine, MatchIndex] = weakref.WeakKeyDictionary()
_KEPT: weakref.WeakSet[MatchIndex] = weakref.WeakSet()
_REGISTRY_LOCK = threading.Lock()


def register_index(engine: Engine, index: MatchIndex) -> None:
    """Called by the worker for the index it builds and refreshes in the background."""
    with _REGISTRY_LOCK:
        _INDEXES[engine] = index
        _KEPT.add(index)


def unregister_index(engine: Engine, index: MatchIndex) -> None:
    with _REGISTRY_LOCK:
        if _INDEXES.get(engine) is index:
            del _INDEXES[engine]


def index_for(session: Session, *, wait_seconds: float = 120.0) -> MatchIndex:
    """This database's index. Without a worker in this process (hash_workers = 0, the CLI)
    one is built from the caller's session, then brought up to date at each call."""
    engine = session.get_bind()
    engine = engine if isinstance(engine, Engine) else engine.engine
    with _REGISTRY_LOCK:
        index = _INDEXES.get(engine)
        if index is None:
            index = _INDEXES[engine] = MatchIndex()
    if index in _KEPT:
        index.ready.wait(wait_seconds)
    else:
        index.refresh(lambda: nullcontext(session))
    return index
