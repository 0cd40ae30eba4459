"""Append-only, hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline import clock
from tipline.audit.models import AuditEntry, AuditHead

GENESIS = "0" * 64
HEAD_ID = 1


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
) -> AuditEntry:
    """Append one entry in the caller's transaction."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=HEAD_ID, seq=0, row_hash=GENESIS)
        session.add(head)
    at = clock.now()
    details_text = json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str)
    seq = head.seq + 1
    entry = AuditEntry(
        seq=seq, at=at, actor=actor, action=action, object_type=object_type,
        object_id=object_id, details=details_text, prev_hash=head.row_hash,
    )
    entry.row_hash = _row_hash(
        seq=seq, at=at, actor=actor, action=action, object_type=object_type,
        object_id=object_id, details=details_text, prev_hash=head.row_hash,
    )
    session.add(entry)
    head.seq = seq
    head.row_hash = entry.row_hash
    session.flush()
    return entry


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
