"""Loading bank entries into the match index: pages of every kind, PDQ kept, ids and hashes
paired correctly, and later entries picked up by a refresh."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.matching.test_imports import make_bank, run
from tipline.db import transaction
from tipline.matching import bank_index
from tipline.matching.models import BankEntry, HashKind


def write_list(path: Path, values: list[str]) -> Path:
    columns = ("md5", "sha1", "pdq")
    path.write_text("MD5,SHA-1,PDQ\n" + "".join(
        ",".join(value if column == kind else "" for column in columns) + "\n" for kind, value in values))
    return path


def test_every_pdq_entry_is_loaded_with_its_own_id_across_pages(
        sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    lines = []
    for n in range(230):
        # MD5 and SHA-1 entries between the PDQ ones: pages hold every kind, the index only PDQ.
        kind = ("pdq", "md5", "pdq", "sha1")[n % 4]
        digits = {"pdq": 64, "md5": 32, "sha1": 40}[kind]
        lines.append((kind, rng.randbytes(digits // 2).hex()))
    bank = make_bank(sessions)
    done = run(sessions, bank, write_list(tmp_path / "bank.csv", lines))
    assert done.added == 230, done.notes
    monkeypatch.setattr(bank_index, "LOAD_PAGE", 16)  # many pages, some without any PDQ entry

    index = bank_index.MatchIndex()
    with transaction(sessions) as session:
        rows = session.execute(select(BankEntry.id, BankEntry.value).where(BankEntry.kind == HashKind.pdq))
        expected: dict[int, str] = {}
        for entry_id, value in rows:
            expected[entry_id] = value
    loaded = index.refresh(lambda: transaction(sessions))
    assert loaded == len(expected) == 115
    for entry_id, value in expected.items():
        hits = index.pdq_hits([bytes.fromhex(value)], 0)[0]
        assert [hit[0] for hit in hits] == [entry_id]

    more = [("pdq", rng.randbytes(32).hex()) for _ in range(20)]
    run(sessions, bank, write_list(tmp_path / "more.csv", more))
    assert index.refresh(lambda: transaction(sessions)) == 20
    assert all(index.pdq_hits([bytes.fromhex(value)], 0)[0] for _kind, value in more)
