"""Append-only, hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, event, insert, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from tipline import clock
from tipline.audit.models import AuditEntry, AuditHead
from tipline.db import new_id

GENESIS = "0" * 64
HEAD_ID = 1
_PENDING_KEY = "tipline.audit.pending"


def _row_hash(
    *, seq: int, at: datetime, actor: str, action: str, object_type: str, object_id: str,
    details: str, prev_hash: str,
) -> str:
    canonical = json.dumps(
        [seq, at.isoformat(), actor, action, object_type, object_id, details, prev_hash],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry in the caller's transaction.

    Entries wait in the session and are chained and written together just before the
    transaction commits: one read of the chain head per transaction however many entries it
    has, and on PostgreSQL the head's row lock is held only for the commit itself."""
    details_text = json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str)
    _pending(session).append(_Pending(clock.now(), actor, action, object_type, object_id, details_text))


@dataclass(frozen=True)
class _Pending:
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    details: str


def _pending(session: Session) -> list[_Pending]:
    found: list[_Pending] = session.info.setdefault(_PENDING_KEY, [])
    return found


def mark(session: Session) -> int:
    """A position in the session's waiting entries, for `discard_since` (savepoints)."""
    return len(_pending(session))


def discard_since(session: Session, position: int) -> None:
    """Drop entries recorded after `position`: their savepoint was rolled back."""
    del _pending(session)[position:]


def write_pending(session: Session) -> int:
    """Chain and insert the waiting entries now; returns how many were written."""
    pending = session.info.pop(_PENDING_KEY, None)
    if not pending:
        return 0
    # Core on the session's connection: no ORM bookkeeping for rows nobody loads back.
    connection = session.connection()
    head = connection.execute(_READ_HEAD).one_or_none()
    seq, prev = (head.seq, head.row_hash) if head is not None else (0, GENESIS)
    rows: list[dict[str, Any]] = []
    for item in pending:
        seq += 1
        row_hash = _row_hash(seq=seq, at=item.at, actor=item.actor, action=item.action,
                             object_type=item.object_type, object_id=item.object_id,
                             details=item.details, prev_hash=prev)
        rows.append({"id": new_id(), "seq": seq, "at": item.at, "actor": item.actor,
                     "action": item.action, "object_type": item.object_type,
                     "object_id": item.object_id, "details": item.details,
                     "prev_hash": prev, "row_hash": row_hash})
        prev = row_hash
    connection.execute(_INSERT_ENTRIES, rows)
    connection.execute(_INSERT_HEAD if head is None else _UPDATE_HEAD, {"seq": seq, "row_hash": prev})
    return len(rows)


# Built once: every committing transaction with audit entries runs these.
_HEADS = cast(Table, AuditHead.__table__)
_READ_HEAD = select(_HEADS.c.seq, _HEADS.c.row_hash).where(_HEADS.c.id == HEAD_ID).with_for_update()
_INSERT_ENTRIES = insert(cast(Table, AuditEntry.__table__))
_INSERT_HEAD = insert(_HEADS).values(id=HEAD_ID)
_UPDATE_HEAD = update(_HEADS).where(_HEADS.c.id == HEAD_ID)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "do_orm_execute")
def _before_reading_the_log(state: ORMExecuteState) -> None:
    # Read-your-writes: a transaction that reads the log sees its own waiting entries.
    if state.is_select and state.session.info.get(_PENDING_KEY) and any(
            m.class_ in (AuditEntry, AuditHead) for m in state.all_mappers):
        write_pending(state.session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    problem: str


def verify(session: Session) -> Iterator[AuditProblem]:
    """Walk the chain; yield every place where it does not hold."""
    expected_prev = GENESIS
    expected_seq = 1
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    for entry in rows.yield_per(1000):
        if entry.seq != expected_seq:
            yield AuditProblem(entry.seq, f"sequence jumps from {expected_seq - 1} to {entry.seq} (rows removed or inserted)")
        if entry.prev_hash != expected_prev:
            yield AuditProblem(entry.seq, "previous-hash link is broken (row removed, inserted or reordered)")
        recomputed = _row_hash(
            seq=entry.seq, at=entry.at, actor=entry.actor, action=entry.action,
            object_type=entry.object_type, object_id=entry.object_id,
            details=entry.details, prev_hash=entry.prev_hash,
        )
        if recomputed != entry.row_hash:
            yield AuditProblem(entry.seq, "row content does not match its hash (row altered)")
        expected_prev = entry.row_hash
        expected_seq = entry.seq + 1
    head = session.get(AuditHead, HEAD_ID)
    last_seq = expected_seq - 1
    if head is None:
        if last_seq:
            yield AuditProblem(last_seq, "audit head is missing")
    elif head.seq != last_seq or head.row_hash != expected_prev:
        yield AuditProblem(head.seq, f"chain ends at {last_seq} but the head records {head.seq} (rows removed from the end)")


def count(session: Session) -> int:
    head = session.get(AuditHead, HEAD_ID)
    return 0 if head is None else head.seq
