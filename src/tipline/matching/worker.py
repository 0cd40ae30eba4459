"""The hashing worker: hashes stored files off the request path and matches them, and
re-matches stored hashes when a bank grows.

The queue is the evidence row itself (hash_state 'pending', the default when a file is
attached), so ingest writes nothing extra. A pass claims pending rows ('hashing'; their
hashed_at holds the claim time, moved forward while the work lasts), hands each to a
process pool that decrypts and hashes it (tipline.matching.hashing), and stores the
result, its custody event and its matches in one transaction for the files that finished
together (a finished file waits at most SETTLE_WITHIN for company; each file is still all
or nothing, see `_settle`). A row left
'hashing' by a worker that died is claimed again once it is `hash_stale_seconds` old;
after MAX_ATTEMPTS failures the file is marked 'failed'. Attempts are counted in a
HashJob(kind="file") row, written only when something went wrong.

One thread runs the passes: woken by `wake()` (intake and the partner API call it after
they commit) or every `hash_poll_seconds`. Another keeps the match index: built at start
(serving does not wait for it), refreshed every `hash_index_refresh_seconds` and at once
when an import in this process adds entries.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import uuid
import weakref
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, bindparam, exists, select, update
from sqlalchemy.orm import Session

from tipline import clock
from tipline.context import AppContext
from tipline.db import insert_new, transaction
from tipline.evidence import service as evidence_service
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.matching import bank_index, hashing, imports, matcher, rematch, service
from tipline.matching.bank_index import MatchIndex
from tipline.matching.hashing import FileHashes, StoredFile
from tipline.matching.models import HashJob, JobState

logger = logging.getLogger(__name__)

PENDING, HASHING, FAILED = "pending", "hashing", "failed"
FILE_JOB = "file"
MAX_ATTEMPTS = 3
RECLAIM_EVERY = 30.0  # seconds between looks for stale claims
SUBMITTED_BATCH = 500  # submitted hashes matched per transaction
CLAIM_WHILE_BUSY = 0.25  # seconds
# Finished files wait for others (SETTLE_FILES_PER_WORKER per hashing process, or at most
# SETTLE_WITHIN) to be stored in the same transaction: the commit, audit head, claim and
# bank lookups are then paid once for several files. The pool holds enough files that it
# never runs dry meanwhile.
SETTLE_WITHIN = 0.5  # seconds
SETTLE_FILES_PER_WORKER = 4
QUEUED_PER_WORKER = 6  # files handed to the pool per hashing process (running and queued)

_WORKERS: weakref.WeakSet[HashWorker] = weakref.WeakSet()


def wake() -> None:
    """Tell every hashing worker of this process that new files are stored (call it after
    the commit); without a call they are found within `hash_poll_seconds`."""
    for worker in list(_WORKERS):
        worker.wake()


class HashWorker:
    def __init__(self, ctx: AppContext, *, workers: int | None = None) -> None:
        self.ctx = ctx
        self.workers = max(1, ctx.settings.hash_workers if workers is None else workers)
        self.index = MatchIndex()
        self._woken = threading.Event()
        self._refresh = threading.Event()
        self._stopping = threading.Event()
        self._pool: ProcessPoolExecutor | None = None
        self._generation = 0
        self._threads: list[threading.Thread] = []
        self._last_reclaim = float("-inf")

    # ---- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        bank_index.register_index(self.ctx.engine, self.index)
        imports.on_entries_added.append(self.entries_added)
        _WORKERS.add(self)
        for target, name in ((self._keep_index, "tipline-match-index"),
                             (self._run, "tipline-hashing")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop both threads and the pool; files claimed but not stored go back to pending."""
        self._stopping.set()
        self._woken.set()
        self._refresh.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        _WORKERS.discard(self)
        if self.entries_added in imports.on_entries_added:
            imports.on_entries_added.remove(self.entries_added)
        bank_index.unregister_index(self.ctx.engine, self.index)
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def wake(self) -> None:
        self._woken.set()

    def entries_added(self, bank_id: uuid.UUID, import_id: uuid.UUID, first_entry_id: int) -> None:
        """imports.on_entries_added hook: load the new entries now and re-match."""
        del bank_id, import_id, first_entry_id  # the refresh and the rematch poll find them
        self._refresh.set()
        self._woken.set()

    def _open(self) -> AbstractContextManager[Session]:
        return transaction(self.ctx.sessions)

    # ---- the index thread ---------------------------------------------------------------

    def _keep_index(self) -> None:
        first = True
        while not self._stopping.is_set():
            self._refresh.clear()
            started = time.monotonic()
            try:
                loaded = self.index.refresh(self._open, cancelled=self._stopping.is_set)
            except Exception:
                logger.exception("loading bank entries into the match index failed")
                self._stopping.wait(self.ctx.settings.hash_index_refresh_seconds)
                continue
            if first or loaded:
                logger.info("match index: %d entries loaded in %.1f s (%d in all)", loaded,
                            time.monotonic() - started, len(self.index))
            if first and len(self.index):
                self.index.pdq_hits([bytes(32)], 0)  # compiles the index's kernels now
            first = False
            self._refresh.wait(self.ctx.settings.hash_index_refresh_seconds)

    # ---- the hashing thread -------------------------------------------------------------

    def _run(self) -> None:
        while not self.index.ready.wait(0.2):
            if self._stopping.is_set():
                return
        while not self._stopping.is_set():
            self._woken.clear()
            try:
                self.run_once()
            except Exception:
                logger.exception("a hashing pass failed")
            self._woken.wait(self.ctx.settings.hash_poll_seconds)

    def run_once(self) -> int:
        """One pass: hash and match every pending file, then run the waiting rematch jobs.
        Answers how many files were hashed (tests call this directly)."""
        # Entries committed since the last refresh are loaded before anything is matched: a
        # file hashed between an import's end and the periodic refresh would otherwise miss
        # them for good (the import's rematch job may already have run). Cheap when nothing
        # is new: one max(id) query.
        self.index.refresh(self._open)
        self._reclaim()
        hashed = self._hash_pending()
        self._match_submitted()
        self._rematch()
        return hashed

    def _hash_pending(self) -> int:
        # future -> (file, pool generation): a dead pool's failures must not end its successor
        inflight: dict[Future[FileHashes], tuple[uuid.UUID, int]] = {}
        finished: list[tuple[uuid.UUID, int, Future[FileHashes]]] = []
        hashed, more = 0, True
        beat = last_claim = time.monotonic()
        first_finished = 0.0  # when the oldest file in `finished` came back
        while not self._stopping.is_set():
            room = QUEUED_PER_WORKER * self.workers - len(inflight)
            # Claim while the last claim filled up, when woken, and a few times a second
            # while busy anyway (files keep arriving from callers that do not wake us).
            wanted = room if room > 0 and (more or self._woken.is_set() or
                                           time.monotonic() - last_claim > CLAIM_WHILE_BUSY) else 0
            # Store finished files together, unless the pool would run dry meanwhile.
            together = SETTLE_FILES_PER_WORKER * self.workers
            settle = bool(finished) and (len(finished) >= together or len(inflight) <= self.workers
                                         or time.monotonic() - first_finished >= SETTLE_WITHIN)
            # A claim stores what has finished in the same transaction, so claim when that is
            # due anyway, when nothing waits to be stored, or once the pool has room for a
            # settle's worth: claiming whenever there was room settled every two or three files.
            if wanted and (settle or not finished or room >= together):
                self._woken.clear()
                settle = True
            else:
                wanted = 0
            if settle:
                claimed = self._settle(finished, wanted)
                hashed, finished = hashed + len(finished), []
                if wanted:
                    more, last_claim = len(claimed) == wanted, time.monotonic()
                for evidence_id, item in claimed:
                    inflight[self._submit(item)] = (evidence_id, self._generation)
            if not inflight:
                break
            # A short wait, so that a stop is noticed while a long video is being hashed,
            # and finished files are not held back long.
            timeout = 1.0 if not finished else max(0.0, first_finished + SETTLE_WITHIN - time.monotonic())
            done, _ = wait_for(inflight, timeout=timeout, return_when=FIRST_COMPLETED)
            if done and not finished:
                first_finished = time.monotonic()
            finished += [(*inflight.pop(future), future) for future in done]
            if inflight and time.monotonic() - beat > self._beat_seconds():
                self._heartbeat([evidence_id for evidence_id, _ in inflight.values()])
                beat = time.monotonic()
        if finished:
            self._settle(finished, 0)
            hashed += len(finished)
        if inflight:  # stopping: another worker will take these at once
            self._release([evidence_id for evidence_id, _ in inflight.values()])
        return hashed

    def _beat_seconds(self) -> float:
        return self.ctx.settings.hash_stale_seconds / 3

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: children start from a clean process that has imported the
            # hashing code once, not from a copy of this threaded server.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["tipline.matching.hashing"])
            settings = self.ctx.settings
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=hashing.init_child,
                initargs=(str(settings.vault_dir), str(settings.keys_dir)))
        return self._pool

    def _submit(self, item: StoredFile) -> Future[FileHashes]:
        try:
            return self._ensure_pool().submit(hashing.hash_in_child, item)
        except BrokenProcessPool:  # a child died since the last result: start afresh
            self._drop_pool()
            return self._ensure_pool().submit(hashing.hash_in_child, item)

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self._generation += 1

    def _settle(self, finished: list[tuple[uuid.UUID, int, Future[FileHashes]]],
                wanted: int) -> list[tuple[uuid.UUID, StoredFile]]:
        """Store the finished files and claim up to `wanted` more, in one transaction (one
        commit, one audit chain update, for however many finished together). Each file is
        still all or nothing: if the batch fails, each is stored on its own."""
        results: list[tuple[uuid.UUID, FileHashes]] = []
        failures: list[tuple[uuid.UUID, str]] = []
        for evidence_id, generation, future in finished:
            try:
                results.append((evidence_id, future.result()))
            except BrokenProcessPool as exc:
                # A child died (a decoder crash, the OOM killer): every file the pool had
                # in hand counts an attempt, and the next claim starts a new pool.
                if generation == self._generation:
                    self._drop_pool()
                failures.append((evidence_id, f"the hashing process stopped: {exc}"))
            except Exception as exc:
                logger.exception("hashing evidence %s failed", evidence_id)
                failures.append((evidence_id, f"{type(exc).__name__}: {exc}"))
        try:
            with self._open() as session:
                self._store(session, results)
                for evidence_id, error in failures:
                    self._failed(session, evidence_id, error)
                return self._claim(session, wanted) if wanted else []
        except Exception:
            logger.exception("storing %d hashed files together failed; one by one now",
                             len(results))
        for evidence_id, hashes in results:
            try:
                with self._open() as session:
                    self._store(session, [(evidence_id, hashes)])
            except Exception as exc:
                logger.exception("storing the hashes of evidence %s failed", evidence_id)
                failures.append((evidence_id, f"{type(exc).__name__}: {exc}"))
        for evidence_id, error in failures:
            with self._open() as session:
                self._failed(session, evidence_id, error)
        with self._open() as session:
            return self._claim(session, wanted) if wanted else []

    def _claim(self, session: Session, limit: int) -> list[tuple[uuid.UUID, StoredFile]]:
        rows = session.execute(_CLAIM, {"limit": limit, "state": HASHING, "now": clock.now()}).all()
        return [(row.id, StoredFile(blob_name=row.blob_name, wrapped_key=row.wrapped_key,
                                    media_type=row.media_type, sha256=row.sha256, size=row.size))
                for row in sorted(rows, key=lambda row: row.received_at)]

    def _heartbeat(self, ids: list[uuid.UUID]) -> None:
        with self._open() as session:
            session.execute(update(EvidenceFile)
                            .where(EvidenceFile.id.in_(ids), EvidenceFile.hash_state == HASHING)
                            .values(hashed_at=clock.now()))

    def _release(self, ids: list[uuid.UUID]) -> None:
        with self._open() as session:
            session.execute(update(EvidenceFile)
                            .where(EvidenceFile.id.in_(ids), EvidenceFile.hash_state == HASHING)
                            .values(hash_state=PENDING, hashed_at=None))

    def _store(self, session: Session, results: list[tuple[uuid.UUID, FileHashes]]) -> None:
        """Hashes, custody events and matches of files this worker claimed."""
        if not results:
            return
        ids = [evidence_id for evidence_id, _ in results]
        found = session.execute(
            select(EvidenceFile, _RETRIED).where(EvidenceFile.id.in_(ids))
            .with_for_update(of=EvidenceFile).execution_options(populate_existing=True)).all()
        rows = {row.id: row for row, _ in found}
        retried = [row.id for row, was_retried in found if was_retried]
        # The rows are written below with Core statements, not by the unit of work: their
        # changes here only feed the custody events and the matcher.
        for loaded in rows.values():
            session.expunge(loaded)
        now = clock.now()
        hashed: list[EvidenceFile] = []
        changes: list[dict[str, object]] = []
        events: list[CustodyEvent] = []
        for evidence_id, hashes in results:
            row = rows.get(evidence_id)
            if row is None or row.hash_state != HASHING:
                continue  # removed meanwhile, or taken over as stale by another worker
            if hashes.problem:
                logger.error("evidence %s failed its integrity check: %s", row.id, hashes.problem)
                row.hash_state = FAILED
                events.append(evidence_service.record_custody(
                    session, row, action="integrity_alarm", actor=matcher.ACTOR, add=False,
                    details={"problem": hashes.problem, "sha256_now": hashes.sha256,
                             "size_now": hashes.size}))
            else:
                row.sha1, row.pdq, row.pdq_quality = hashes.sha1, hashes.pdq, hashes.pdq_quality
                row.vpdq_frames, row.hash_state = hashes.vpdq_frames, hashes.state
                events.append(evidence_service.record_custody(
                    session, row, action="hashed", actor=matcher.ACTOR, add=False,
                    details=hashes.custody_details()))
                hashed.append(row)
            changes.append({"file_id": row.id, "sha1": row.sha1, "pdq": row.pdq,
                            "pdq_quality": row.pdq_quality, "vpdq_frames": row.vpdq_frames,
                            "hash_state": row.hash_state, "hashed_at": now})
        if changes:
            session.execute(_SET_HASHES, changes)
            insert_new(session, events)
        matcher.match_evidence(session, self.index, hashed)
        if retried:
            session.execute(update(HashJob)
                            .where(HashJob.kind == FILE_JOB, HashJob.evidence_id.in_(retried))
                            .values(state=JobState.done, finished_at=now))

    def _failed(self, session: Session, evidence_id: uuid.UUID, error: str) -> None:
        row = session.get(EvidenceFile, evidence_id, with_for_update=True, populate_existing=True)
        if row is not None and row.hash_state == HASHING:
            _count_failure(session, row, error)

    def _reclaim(self) -> None:
        now = time.monotonic()
        if now - self._last_reclaim < RECLAIM_EVERY:
            return
        self._last_reclaim = now
        stale_before = clock.now() - timedelta(seconds=self.ctx.settings.hash_stale_seconds)
        with self._open() as session:
            rows = session.execute(
                select(EvidenceFile).where(EvidenceFile.hash_state == HASHING,
                                           EvidenceFile.hashed_at < stale_before)
                .with_for_update(skip_locked=True)).scalars().all()
            for row in rows:
                logger.warning("evidence %s was left half-hashed; hashing it again", row.id)
                _count_failure(session, row, "hashing did not finish (its worker stopped)")

    # ---- hashes sent without their files ------------------------------------------------

    def _match_submitted(self) -> int:
        """Match the submitted hashes of filed reports that wait; answers how many."""
        matched, limit = 0, SUBMITTED_BATCH
        while not self._stopping.is_set():
            try:
                with self._open() as session:
                    count = service.match_waiting_hashes(session, self.index, limit=limit)
            except Exception as exc:
                logger.exception("matching submitted hashes failed")
                if limit > 1:  # one bad row must not hold up the others: one at a time
                    limit = 1
                    continue
                with self._open() as session:
                    service.set_aside_waiting_hash(session, f"{type(exc).__name__}: {exc}")
                count = 1
            matched += count
            if count < limit:
                return matched
        return matched

    # ---- retro-matching -----------------------------------------------------------------

    def _rematch(self) -> None:
        stale_before = clock.now() - timedelta(seconds=self.ctx.settings.hash_stale_seconds)
        while not self._stopping.is_set():
            with self._open() as session:
                rematch.queue_finished_imports(session)
                job = rematch.claim_job(session, stale_before=stale_before)
                if job is None or job.import_id is None:
                    return
                job_id, import_id = job.id, job.import_id
            try:
                made = rematch.run_job(self._open, self.index, job_id, import_id)
                logger.info("re-matched stored files against import %s: %d matches", import_id, made)
            except Exception as exc:
                logger.exception("re-matching import %s failed", import_id)
                with self._open() as session:
                    rematch.fail_job(session, job_id, f"{type(exc).__name__}: {exc}",
                                     max_attempts=MAX_ATTEMPTS)


_FILES = cast(Table, EvidenceFile.__table__)
# Claim: the oldest pending rows, moved to 'hashing' in one statement (rows another worker
# has locked are skipped on PostgreSQL; SQLite has one writer at a time anyway).
_CLAIM = (update(_FILES)
          .where(_FILES.c.id.in_(select(_FILES.c.id).where(_FILES.c.hash_state == PENDING)
                                 .order_by(_FILES.c.received_at).limit(bindparam("limit"))
                                 .with_for_update(skip_locked=True)))
          .values(hash_state=bindparam("state"), hashed_at=bindparam("now"))
          .returning(_FILES.c.id, _FILES.c.blob_name, _FILES.c.wrapped_key, _FILES.c.media_type,
                     _FILES.c.sha256, _FILES.c.size, _FILES.c.received_at))
# Whether a file failed before: its attempt counter is closed when it is stored.
_RETRIED = (exists().where(HashJob.kind == FILE_JOB, HashJob.evidence_id == EvidenceFile.id,
                           HashJob.state != JobState.done)
            .correlate(EvidenceFile).label("retried"))
_SET_HASHES = (update(_FILES).where(_FILES.c.id == bindparam("file_id"))
               .values(sha1=bindparam("sha1"), pdq=bindparam("pdq"),
                       pdq_quality=bindparam("pdq_quality"), vpdq_frames=bindparam("vpdq_frames"),
                       hash_state=bindparam("hash_state"), hashed_at=bindparam("hashed_at")))


def _count_failure(session: Session, row: EvidenceFile, error: str) -> None:
    """One more failed attempt at hashing this file: back to pending, or failed for good."""
    job = session.execute(select(HashJob).where(HashJob.kind == FILE_JOB,
                                                HashJob.evidence_id == row.id)).scalar()
    now = clock.now()
    if job is None:
        job = HashJob(kind=FILE_JOB, evidence_id=row.id, state=JobState.queued, attempts=0,
                      created_at=now, error="")
        session.add(job)
    job.attempts += 1
    job.error, job.started_at = error[:2000], now
    if job.attempts < MAX_ATTEMPTS:
        row.hash_state, row.hashed_at = PENDING, None
        return
    job.state, job.finished_at = JobState.failed, now
    row.hash_state, row.hashed_at = FAILED, now
    evidence_service.record_custody(session, row, action="hash_failed", actor=matcher.ACTOR,
                                    details={"error": error[:500], "attempts": job.attempts})
