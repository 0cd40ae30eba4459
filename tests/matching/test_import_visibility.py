"""Imports commit batch by batch without holding the database, and their entries appear
all at once when the import is done (or never, when it fails or its process dies)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.matching.test_imports import hexes, make_bank, run
from tipline import clock
from tipline.db import transaction
from tipline.errors import Conflict
from tipline.matching import banks, imports
from tipline.matching.models import BankEntry, BankImport, CategoryScheme, HashKind, JobState


def counts(sessions: sessionmaker[Session], bank_id: object) -> tuple[int, int]:
    """(rows stored, rows visible) of one bank."""
    with transaction(sessions) as session:
        stored = session.execute(select(func.count()).select_from(BankEntry)
                                 .where(BankEntry.bank_id == bank_id)).scalar_one()
        shown = session.execute(select(func.count()).select_from(BankEntry)
                                .where(BankEntry.bank_id == bank_id, banks.visible_entries())).scalar_one()
    return stored, shown


def test_entries_appear_only_when_the_import_is_done_and_others_can_write_meanwhile(
        sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "BATCH_ROWS", 100)
    bank_id = make_bank(sessions)
    path = tmp_path / "list.txt"
    path.write_text("\n".join(hexes(128, 450)) + "\n")
    seen: list[tuple[int, int, int]] = []

    def progress(lines: int, _done: int, _total: int) -> None:
        stored, shown = counts(sessions, bank_id)
        # Another writer gets the database between two batches (a reporter's submission
        # would): here, an unrelated bank is created and committed.
        make_bank(sessions, name=f"meanwhile-{lines}")
        with transaction(sessions) as session:
            summary = {s.bank.id: s.total for s in banks.list_banks(session)}
            running = banks.list_imports(session, banks.get_bank(session, bank_id))[0]
        seen.append((stored, shown, summary[bank_id]))
        assert running.state == JobState.running and running.lines == lines

    record = run(sessions, bank_id, path, progress=progress)
    assert record.state == JobState.done and record.added == 450
    # Rows were committed batch by batch (100, 200, ...) but none counted before the end.
    assert [stored for stored, _, _ in seen[:4]] == [100, 200, 300, 400]
    assert all(shown == 0 and listed == 0 for _, shown, listed in seen[:-1])
    assert counts(sessions, bank_id) == (450, 450)


def test_a_second_import_into_the_same_bank_waits_for_the_first(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    bank_id = make_bank(sessions)
    path = tmp_path / "list.txt"
    path.write_text("\n".join(hexes(128, 20)) + "\n")
    refused: list[str] = []

    def progress(*_: int) -> None:
        if not refused:
            with pytest.raises(Conflict) as caught:
                run(sessions, bank_id, path)
            refused.append(caught.value.message)

    assert run(sessions, bank_id, path, progress=progress).state == JobState.done
    assert "still running (list.txt)" in refused[0]
    with transaction(sessions) as session:
        states = [i.state for i in banks.list_imports(session, banks.get_bank(session, bank_id))]
    assert states == [JobState.done]  # the refused one recorded nothing


def test_an_import_whose_process_died_is_swept_and_its_entries_removed(
        sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "BATCH_ROWS", 50)
    bank_id = make_bank(sessions, scheme=CategoryScheme.custom)
    path = tmp_path / "list.txt"
    path.write_text("\n".join(hexes(160, 120)) + "\n")

    class Died(BaseException):
        """Stands for SIGKILL: nothing after it runs, not even the failure record."""

    def progress(lines: int, *_: int) -> None:
        if lines >= 100:
            raise Died

    monkeypatch.setattr(imports, "_fail", lambda *a, **k: None)  # a killed process records nothing
    with pytest.raises(Died):
        run(sessions, bank_id, path, progress=progress)
    monkeypatch.undo()
    assert counts(sessions, bank_id) == (100, 0)
    assert imports.sweep_stale(sessions) == 0  # still fresh: it might be alive
    with transaction(sessions) as session:
        session.execute(update(BankImport).values(progress_at=clock.now() - timedelta(minutes=11)))
    assert imports.sweep_stale(sessions) == 1
    assert counts(sessions, bank_id) == (0, 0)
    with transaction(sessions) as session:
        record = banks.list_imports(session, banks.get_bank(session, bank_id))[0]
    assert record.state == JobState.failed and "stopped without finishing" in record.error
    # The bank is free again: the same file imports whole.
    assert run(sessions, bank_id, path).added == 120
    assert counts(sessions, bank_id) == (120, 120)


def test_notes_are_kept_on_the_import(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    bank_id = make_bank(sessions, scheme=CategoryScheme.interpol)
    path = tmp_path / "icse.csv"
    md5 = hexes(128)[0]
    path.write_text(f"MD5;SHA1;PhotoDNA;Image ID\n{md5};;{'ab' * 144};7\n")
    record = run(sessions, bank_id, path)
    assert record.added == 1 and any("PhotoDNA" in note for note in record.notes)
    with transaction(sessions) as session:
        kinds = session.execute(select(BankEntry.kind).where(BankEntry.bank_id == bank_id)).scalars().all()
    assert kinds == [HashKind.md5]
