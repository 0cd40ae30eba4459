"""What other domains ask of matching: which files and hashes of a report are known, how
far hashing has got, and matching a hash sent without its file.

Files are hashed and matched by the background worker (tipline.matching.worker); call
`worker.wake()` after committing new files or submitted hashes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from tipline import clock
from tipline.audit import service as audit
from tipline.db import new_id
from tipline.evidence.models import EvidenceFile
from tipline.matching import bank_index, matcher
from tipline.matching.bank_index import MatchIndex
from tipline.matching.models import CategoryScheme, HashBank, HashKind, HashMatch, SubmittedHash


@dataclass(frozen=True)
class MatchSummary:
    """One match of a file (or a submitted hash) in one bank, as the pages show it."""

    evidence_id: uuid.UUID | None
    submitted_hash_id: uuid.UUID | None
    bank_id: uuid.UUID
    bank_name: str
    category_scheme: CategoryScheme
    category: str | None
    kind: HashKind
    distance: int
    matched_at: datetime


def matches_for_report(session: Session, report_id: uuid.UUID) -> list[MatchSummary]:
    """Every match of the report's files and submitted hashes, closest first."""
    rows = session.execute(
        select(HashMatch, HashBank.name, HashBank.category_scheme)
        .join(HashBank, HashBank.id == HashMatch.bank_id)
        .where(HashMatch.report_id == report_id)
        .order_by(HashMatch.distance, HashBank.name, HashMatch.matched_at)
    )
    return [
        MatchSummary(evidence_id=m.evidence_id, submitted_hash_id=m.submitted_hash_id,
                     bank_id=m.bank_id, bank_name=name, category_scheme=scheme,
                     category=m.category, kind=m.kind, distance=m.distance, matched_at=m.matched_at)
        for m, name, scheme in rows
    ]


def known_evidence_ids(session: Session, report_id: uuid.UUID) -> dict[uuid.UUID, list[MatchSummary]]:
    """Evidence id -> its matches, for the report's files found in any bank."""
    known: dict[uuid.UUID, list[MatchSummary]] = {}
    for match in matches_for_report(session, report_id):
        if match.evidence_id is not None:
            known.setdefault(match.evidence_id, []).append(match)
    return known


def report_is_all_known(session: Session, report_id: uuid.UUID) -> bool:
    """True if the report has files and every one matched a bank with a category."""
    has_files = session.execute(select(exists().where(EvidenceFile.report_id == report_id))).scalar()
    categorised = exists().where(HashMatch.evidence_id == EvidenceFile.id,
                                 HashMatch.category.is_not(None))
    unknown = session.execute(select(exists().where(
        EvidenceFile.report_id == report_id, ~categorised))).scalar()
    return bool(has_files) and not unknown



@dataclass(frozen=True)
class HashingProgress:
    """Stored files by hash_state, and submitted hashes of filed reports not matched yet."""

    pending: int
    hashing: int
    done: int
    none: int
    failed: int
    submitted_waiting: int

    @property
    def waiting(self) -> int:
        return self.pending + self.hashing + self.submitted_waiting


def hashing_progress(session: Session) -> HashingProgress:
    counts = dict(session.execute(  # rows, not the Result (whose keys() dict() would use)
        select(EvidenceFile.hash_state, func.count()).group_by(EvidenceFile.hash_state)).all())
    waiting = session.execute(select(func.count()).select_from(SubmittedHash).where(
        SubmittedHash.matched_at.is_(None), SubmittedHash.report_id.is_not(None))).scalar_one()
    return HashingProgress(pending=counts.get("pending", 0), hashing=counts.get("hashing", 0),
                           done=counts.get("done", 0), none=counts.get("none", 0),
                           failed=counts.get("failed", 0), submitted_waiting=waiting)


def match_submitted_hash(session: Session, submitted: SubmittedHash, *,
                         index: MatchIndex | None = None) -> list[HashMatch]:
    """Match one submitted hash against the enabled banks now, by the rules files follow,
    and mark it matched. Its report must be filed (report_id set). The worker does this
    for every waiting hash; a caller that wants the answer at once may call it directly
    (it flushes the session: the hash row must exist before its matches)."""
    if submitted.report_id is None:
        raise ValueError("a submitted hash is matched once its report is filed")
    if submitted.id is None:
        submitted.id = new_id()
    session.add(submitted)  # a no-op for a row already in the session
    if submitted in session.new:
        session.flush()
    probe = matcher.Probe.of_submitted(submitted)
    if index is None and (probe.pdq is not None or probe.vpdq):
        index = bank_index.index_for(session)
    made = matcher.store_matches(session, probe, matcher.find_hits(session, index, probe))
    submitted.matched_at = clock.now()
    return made


def _waiting() -> Select[SubmittedHash]:
    return (select(SubmittedHash).where(SubmittedHash.matched_at.is_(None),
                                        SubmittedHash.report_id.is_not(None))
            .order_by(SubmittedHash.submitted_at))


def match_waiting_hashes(session: Session, index: MatchIndex | None, *, limit: int) -> int:
    """Match up to `limit` submitted hashes of filed reports not matched yet (the worker's
    queue); answers how many."""
    rows = session.execute(_waiting().limit(limit).with_for_update(skip_locked=True)).scalars().all()
    for row in rows:
        match_submitted_hash(session, row, index=index)
    return len(rows)


def set_aside_waiting_hash(session: Session, error: str) -> None:
    """Mark the oldest waiting submitted hash as looked at, unmatched, because matching it
    failed (so that the queue moves on), with an audit row saying why."""
    row = session.execute(_waiting().limit(1)).scalar()
    if row is not None:
        row.matched_at = clock.now()
        audit.record(session, actor=matcher.ACTOR, action="hash.match_failed",
                     object_type="submitted_hash", object_id=str(row.id),
                     details={"error": error[:500]})
