"""Retro-matching: when an import adds entries to a bank, the files (and hashes) already
stored are matched against the new entries.

From stored hashes only: the files are never decrypted again, because their MD5, SHA-1,
SHA-256, PDQ and vPDQ are on their rows. (Only a hash type Tipline did not compute before
would need the files read again; that would be a new job kind, not this one.)

Each finished import gets a HashJob(kind="rematch"). The job walks the stored files in
batches, one short transaction each: exact kinds by an SQL join on the import's entries,
PDQ by querying a small index of the import's PDQ entries with every stored PDQ of the
batch, vPDQ by comparing with the import's few videos. Progress is kept on the import
(rematch_total, rematch_done, rematch_state), for the bank pages.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from tipline import clock
from tipline.evidence.models import EvidenceFile
from tipline.matching import matcher
from tipline.matching.bank_index import MatchIndex
from tipline.matching.hashing import parse_frames
from tipline.matching.index import MAX_DISTANCE, PdqIndex, stack_hashes
from tipline.matching.matcher import Hit, Probe
from tipline.matching.models import (
    BankEntry,
    BankImport,
    HashBank,
    HashJob,
    HashKind,
    JobState,
    SubmittedHash,
)

BATCH = 2000
REMATCH = "rematch"
HASHED_STATES = ("done", "none")
Opener = Callable[[], AbstractContextManager[Session]]
_EVIDENCE_COLUMNS = {HashKind.md5: EvidenceFile.md5, HashKind.sha1: EvidenceFile.sha1,
                     HashKind.sha256: EvidenceFile.sha256}


def queue_finished_imports(session: Session) -> list[uuid.UUID]:
    """A rematch job for each finished import that added entries and has none yet (found
    by polling, so an import made by another process, the CLI, is re-matched too)."""
    found = list(session.execute(
        select(BankImport).where(BankImport.state == JobState.done, BankImport.added > 0,
                                 BankImport.rematch_state.is_(None))
        .with_for_update(skip_locked=True)).scalars())
    now = clock.now()
    for item in found:
        item.rematch_state = JobState.queued
        session.add(HashJob(kind=REMATCH, import_id=item.id, state=JobState.queued,
                            attempts=0, created_at=now, error=""))
    return [item.id for item in found]


def claim_job(session: Session, *, stale_before: datetime) -> HashJob | None:
    """The oldest queued rematch job, or a running one whose worker stopped making progress
    (`started_at` moves forward with each batch, so it is the time of the last progress)."""
    job = session.execute(
        select(HashJob).where(HashJob.kind == REMATCH, or_(
            HashJob.state == JobState.queued,
            and_(HashJob.state == JobState.running, HashJob.started_at < stale_before)))
        .order_by(HashJob.created_at).limit(1).with_for_update(skip_locked=True)).scalar()
    if job is not None:
        job.state = JobState.running
        job.started_at = clock.now()
        job.attempts += 1
    return job


class _NewEntries:
    """The import's entries, as the batches need them."""

    def __init__(self, session: Session, import_id: uuid.UUID) -> None:
        item = session.get_one(BankImport, import_id)
        bank = session.get_one(HashBank, item.bank_id)
        self.import_id = import_id
        self.threshold = min(bank.pdq_threshold, MAX_DISTANCE)
        kinds = session.execute(select(BankEntry.kind).where(BankEntry.import_id == import_id)
                                .distinct()).scalars()
        self.exact = [kind for kind in kinds if kind in matcher.EXACT_KINDS]
        pdq = session.execute(select(BankEntry.id, BankEntry.value).where(
            BankEntry.import_id == import_id, BankEntry.kind == HashKind.pdq)).all()
        self.pdq = PdqIndex.build(np.array([row[0] for row in pdq], np.int64),
                                  stack_hashes([bytes.fromhex(row[1]) for row in pdq]))
        self.vpdq = [(entry_id, bank.id, tuple(parse_frames(frames))) for entry_id, frames in
                     session.execute(select(BankEntry.id, BankEntry.frames).where(
                         BankEntry.import_id == import_id, BankEntry.kind == HashKind.vpdq))
                     if frames]

    def exact_evidence(self, session: Session, ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, int]]:
        """(file, entry) where a file's stored digest is a new entry's value."""
        found: list[tuple[uuid.UUID, int]] = []
        for kind in self.exact:
            column = _EVIDENCE_COLUMNS[kind]
            found += session.execute(
                select(EvidenceFile.id, BankEntry.id)
                .join(BankEntry, and_(BankEntry.kind == kind, BankEntry.value == column))
                .where(BankEntry.import_id == self.import_id, EvidenceFile.id.in_(ids)))
        return found

    def exact_submitted(self, session: Session, ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, int]]:
        if not self.exact:
            return []
        return list(session.execute(
            select(SubmittedHash.id, BankEntry.id)
            .join(BankEntry, and_(BankEntry.kind == SubmittedHash.kind,
                                  BankEntry.value == SubmittedHash.value))
            .where(BankEntry.import_id == self.import_id, SubmittedHash.id.in_(ids))))

    def perceptual_hits(self, probes: Sequence[Probe]) -> list[list[Hit]]:
        hits: list[list[Hit]] = [[] for _ in probes]
        with_pdq = [i for i, probe in enumerate(probes) if probe.pdq is not None]
        if with_pdq and len(self.pdq):
            found = self.pdq.query_batch(
                stack_hashes([probes[i].pdq for i in with_pdq]),  # type: ignore[misc]
                self.threshold)
            for i, matches in zip(with_pdq, found, strict=True):
                hits[i] += matches
        if self.vpdq:
            thresholds = {self.vpdq[0][1]: self.threshold}
            for i, probe in enumerate(probes):
                if probe.vpdq:
                    hits[i] += matcher.vpdq_hits(probe.vpdq, self.vpdq, thresholds)
        return hits


def run_job(open_session: Opener, index: MatchIndex | None, job_id: uuid.UUID,
            import_id: uuid.UUID, *, batch: int = BATCH) -> int:
    """Re-match stored files and submitted hashes against one import; answers how many
    matches were made. Safe to run again: pairs already matched are skipped."""
    if index is not None:
        # From now on newly hashed files meet the import's entries in the index, and the
        # files hashed before are in the batches below: none is missed in between.
        index.refresh(open_session)
        with open_session() as session:
            index.load_import(session, import_id)
    with open_session() as session:
        new = _NewEntries(session, import_id)
        item = session.get_one(BankImport, import_id)
        item.rematch_total = (
            session.execute(select(func.count()).select_from(EvidenceFile)
                            .where(EvidenceFile.hash_state.in_(HASHED_STATES))).scalar_one()
            + session.execute(select(func.count()).select_from(SubmittedHash)
                              .where(SubmittedHash.report_id.is_not(None))).scalar_one())
        item.rematch_done = 0
        item.rematch_state = JobState.running
    made = 0
    for next_batch in (_evidence_batch, _submitted_batch):
        after: uuid.UUID | None = None
        while True:
            with open_session() as session:
                after, count, found = next_batch(session, new, after, batch)
                if not count:
                    break
                made += found
                item = session.get_one(BankImport, import_id)
                item.rematch_done += count
                job = session.get_one(HashJob, job_id)
                job.started_at = clock.now()  # progress, see claim_job
    with open_session() as session:
        item = session.get_one(BankImport, import_id)
        item.rematch_state = JobState.done
        job = session.get_one(HashJob, job_id)
        job.state, job.finished_at = JobState.done, clock.now()
    return made


def fail_job(session: Session, job_id: uuid.UUID, error: str, *, max_attempts: int) -> None:
    job = session.get_one(HashJob, job_id)
    job.error = error[:2000]
    given_up = job.attempts >= max_attempts
    job.state = JobState.failed if given_up else JobState.queued
    if given_up:
        job.finished_at = clock.now()
    if job.import_id is not None:
        item = session.get_one(BankImport, job.import_id)
        item.rematch_state = JobState.failed if given_up else JobState.queued


Batch = tuple[uuid.UUID | None, int, int]  # (last id, rows, matches made)


def _evidence_batch(session: Session, new: _NewEntries, after: uuid.UUID | None,
                    batch: int) -> Batch:
    return _rows_batch(session, new, after, batch, EvidenceFile,
                       EvidenceFile.hash_state.in_(HASHED_STATES), Probe.of_evidence,
                       new.exact_evidence)


def _submitted_batch(session: Session, new: _NewEntries, after: uuid.UUID | None,
                     batch: int) -> Batch:
    # Hashes of a partner report still open wait for it: they are matched when it is filed.
    return _rows_batch(session, new, after, batch, SubmittedHash,
                       SubmittedHash.report_id.is_not(None), Probe.of_submitted,
                       new.exact_submitted)


def _rows_batch(session: Session, new: _NewEntries, after: uuid.UUID | None, batch: int,
                table: Any, condition: Any, probe: Callable[[Any], Probe],
                exact: Callable[[Session, Sequence[uuid.UUID]], list[tuple[uuid.UUID, int]]]) -> Batch:
    """The next `batch` rows (files or submitted hashes) after `after`, in id order,
    matched against the import's new entries."""
    query = select(table).where(condition).order_by(table.id).limit(batch)
    if after is not None:
        query = query.where(table.id > after)
    rows = list(session.execute(query).scalars())
    if not rows:
        return after, 0, 0
    ids = [row.id for row in rows]
    return ids[-1], len(rows), _store(session, new, ids, [probe(row) for row in rows],
                                      exact(session, ids))


def _store(session: Session, new: _NewEntries, ids: list[uuid.UUID], probes: list[Probe],
           exact: list[tuple[uuid.UUID, int]]) -> int:
    hits = new.perceptual_hits(probes)
    position = {row_id: i for i, row_id in enumerate(ids)}
    for row_id, entry_id in exact:
        hits[position[row_id]].append((entry_id, 0))
    made = 0
    for probe, found in zip(probes, hits, strict=True):
        if found:
            made += len(matcher.store_matches(session, probe, found))
    return made
