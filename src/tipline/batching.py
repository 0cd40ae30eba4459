"""Group commit: the partner API's writes that arrive together share one transaction.

A partner's requests are small writes (open a report, add a file, finish). Committed one by
one, each pays a commit (an fsync on SQLite), a read of the audit chain's head and the ORM's
per-flush overhead. Here one thread per process takes every operation that is waiting, runs
them in one transaction and commits once; each caller is answered after that commit, so
nothing is acknowledged before it is durable.

An operation is a function of the session. It must check everything before it changes
anything: an expected refusal (any exception listed in `refusals`) is answered to its caller
alone, and the rest of the batch goes on. Any other failure rolls the whole batch back, and
then every operation of that batch runs again in a transaction of its own, so one bad
operation never fails its neighbours.

Operations may register work for the end of the batch with `at_batch_end(session, fn)`;
it runs once, after every operation, before the commit (triage scores a batch of new reports
with one query this way).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from tipline.audit import service as audit
from tipline.db import transaction

T = TypeVar("T")
Operation = Callable[[Session], Any]
_BATCH_END_KEY = "tipline.batching.at_end"


def at_batch_end(session: Session, fn: Callable[[Session], None]) -> None:
    """Run `fn(session)` once the batch's operations have run, before the commit. Outside
    a writer (a plain `transaction`), call `run_batch_end(session)` yourself."""
    session.info.setdefault(_BATCH_END_KEY, []).append(fn)


def run_batch_end(session: Session) -> None:
    while hooks := session.info.pop(_BATCH_END_KEY, []):
        for fn in hooks:
            fn(session)


@dataclass
class _Item:
    operation: Operation
    future: Future[Any] = field(default_factory=Future)


class GroupCommitWriter:
    """One writer thread per process, started on demand and ended after a quiet spell."""

    def __init__(self, sessions: sessionmaker[Session], *, refusals: tuple[type[BaseException], ...],
                 max_batch: int = 64, idle_seconds: float = 2.0, linger_seconds: float = 0.002) -> None:
        self._sessions = sessions
        self._refusals = refusals
        self._max_batch = max_batch
        self._idle = idle_seconds
        self._linger = linger_seconds
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.operations = 0

    def submit(self, operation: Operation) -> Future[Any]:
        item = _Item(operation)
        self._queue.put(item)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="tipline-group-commit", daemon=True)
                self._thread.start()
        return item.future

    def call(self, operation: Callable[[Session], T]) -> T:
        """Run one operation and wait for its commit (from any thread but the writer's)."""
        result: T = self.submit(operation).result()
        return result

    async def run(self, operation: Callable[[Session], T]) -> T:
        """The same, awaited from the event loop."""
        result: T = await asyncio.wrap_future(self.submit(operation))
        return result

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._idle)
            except queue.Empty:
                with self._lock:
                    # Nothing can be queued unseen: submit() puts before it checks the thread.
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            batch = [first]
            # Linger a moment for operations already on their way: larger batches share
            # the commit and the per-batch work, at the cost of a millisecond of latency.
            deadline = time.monotonic() + self._linger
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            self._execute(batch, top_up=True)

    def _top_up(self, batch: list[_Item]) -> None:
        """Add what arrived while the transaction waited for SQLite's write lock (held by
        another server process): the busier the database, the larger the batches."""
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _execute(self, batch: list[_Item], *, top_up: bool = False) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with transaction(self._sessions) as session, session.no_autoflush:
                if top_up:
                    self._top_up(batch)
                for item in batch:
                    outcomes.append(self._one(session, item))
                run_batch_end(session)
            self.batches += 1
            self.operations += len(batch)
        except BaseException as exc:  # noqa: BLE001 (every caller must be answered)
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for item in batch:
                self._execute([item])
            return
        for item, (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)

    def _one(self, session: Session, item: _Item) -> tuple[bool, Any]:
        position = audit.mark(session)
        added = set(session.new)
        try:
            return True, item.operation(session)
        except self._refusals as refusal:
            # A refusal changes nothing; drop anything it queued regardless.
            audit.discard_since(session, position)
            for obj in set(session.new) - added:
                session.expunge(obj)
            return False, refusal
