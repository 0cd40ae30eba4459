"""Bank imports started from the staff pages: run in a thread, watched from the page.

`imports.run_import` owns its transactions and may run for minutes, so the page starts it
in a thread of its own and redirects to a progress page at once. That page needs the
import's id, which run_import only returns at the end; so the thread hands run_import a
session factory of its own that notices the import row being committed (run_import's
first, short transaction) and reports the row's id back to the waiting request.

Progress (lines read, bytes read) and the operator's notes exist only in this process's
memory: the import row holds the final counts, not the running ones. Uploaded files wait
in a private folder under the data directory and are deleted when the import ends."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from tipline.errors import TiplineError
from tipline.matching import imports
from tipline.matching.models import BankImport, HashKind

# Uploads and exports wait here; a folder left by a server that stopped mid-import is
# removed at a later upload.
FILES = "bank-files"
STALE_SECONDS = 24 * 3600
# How long the request waits for the import row; on SQLite an import queues behind any
# other import, which holds the write lock until it ends.
START_WAIT_SECONDS = 20.0
KEEP_NOTES = 200
logger = logging.getLogger(__name__)


@dataclass
class Progress:
    lines: int = 0
    bytes_done: int = 0
    bytes_total: int = 0

    @property
    def percent(self) -> int | None:
        if self.bytes_total <= 0:
            return None
        return min(100, self.bytes_done * 100 // self.bytes_total)


@dataclass
class _Start:
    ready: threading.Event = field(default_factory=threading.Event)
    import_id: uuid.UUID | None = None
    error: BaseException | None = None


_lock = threading.Lock()
_running: dict[uuid.UUID, Progress] = {}
_notes: OrderedDict[uuid.UUID, list[str]] = OrderedDict()
_busy_folders: set[Path] = set()


def progress_of(import_id: uuid.UUID) -> Progress | None:
    """How far a running import of this process has got; None when it is not running here."""
    with _lock:
        found = _running.get(import_id)
        return None if found is None else Progress(found.lines, found.bytes_done, found.bytes_total)


def notes_of(import_id: uuid.UUID) -> list[str]:
    """Remarks for the operator (e.g. ignored PhotoDNA columns) of a recent import."""
    with _lock:
        return list(_notes.get(import_id, []))


def safe_filename(name: str) -> str:
    """The last part of a browser-sent file name, without control characters or a leading
    dot; the import records it, and its extension helps guess the format."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(c for c in base if c.isprintable()).strip().lstrip(".")
    return base[:200] or "upload"


def private_path(data_dir: Path, filename: str) -> Path:
    """The path for one uploaded or exported file, in a new folder only this process can
    read (`discard` removes it)."""
    root = data_dir / FILES
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    _sweep(root)
    folder = Path(tempfile.mkdtemp(dir=root))  # mode 0700
    with _lock:
        _busy_folders.add(folder)
    return folder / safe_filename(filename)


def discard(path: Path) -> None:
    with _lock:
        _busy_folders.discard(path.parent)
    shutil.rmtree(path.parent, ignore_errors=True)


def _sweep(root: Path) -> None:
    cutoff = time.time() - STALE_SECONDS
    with _lock:
        busy = set(_busy_folders)
    for folder in root.iterdir():
        try:
            if folder not in busy and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def start_import(sessions: sessionmaker[Session], *, bank_id: uuid.UUID, path: Path,
                 format: str, kind: HashKind | None, actor: str,  # noqa: A002 - run_import's word
                 wait_seconds: float | None = None) -> uuid.UUID | None:
    """Import `path` into the bank in a new thread, then delete its upload folder.

    Returns the import's id as soon as its row is committed, or None if the import has not
    started within `wait_seconds` (default START_WAIT_SECONDS; it then starts later, on its
    own). Raises what run_import
    raises before it records anything: NotFound for the bank, InvalidInput for the format."""
    start = _Start()
    progress = Progress()
    watching = sessionmaker(**sessions.kw)

    def after_flush(session: Session, _context: Any) -> None:
        for row in session.new:
            if isinstance(row, BankImport):
                session.info["bank_import"] = row.id

    def after_commit(session: Session) -> None:
        found = session.info.pop("bank_import", None)
        if isinstance(found, uuid.UUID) and start.import_id is None:
            with _lock:
                _running[found] = progress
            start.import_id = found
            start.ready.set()

    event.listen(watching, "after_flush", after_flush)
    event.listen(watching, "after_commit", after_commit)

    def report(lines: int, done: int, total: int) -> None:
        with _lock:
            progress.lines, progress.bytes_done, progress.bytes_total = lines, done, total

    notes: list[str] = []

    def run() -> None:
        try:
            imports.run_import(watching, bank_id=bank_id, path=path, format=format, kind=kind,
                               actor=actor, progress=report, on_note=notes.append)
        except BaseException as exc:
            start.error = exc
            if not isinstance(exc, TiplineError):
                logger.exception("bank import of %s failed", path.name)
        finally:
            discard(path)
            _finished(start.import_id, notes)
            start.ready.set()

    threading.Thread(target=run, name=f"bank-import-{path.name[:40]}").start()
    start.ready.wait(START_WAIT_SECONDS if wait_seconds is None else wait_seconds)
    if start.import_id is None and start.error is not None:
        raise start.error
    return start.import_id


def _finished(import_id: uuid.UUID | None, notes: list[str]) -> None:
    if import_id is None:
        return
    with _lock:
        _running.pop(import_id, None)
        if notes:
            _notes[import_id] = list(notes)
            while len(_notes) > KEEP_NOTES:
                _notes.popitem(last=False)
