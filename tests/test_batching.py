"""The group-commit writer (tipline.batching) on a real SQLite database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tipline.batching import GroupCommitWriter
from tipline.db import _WRITE_LOCKS, make_engine, make_sessionmaker


class Refused(Exception):
    pass


@pytest.fixture
def writer(tmp_path: Path) -> GroupCommitWriter:
    engine = make_engine(f"sqlite:///{tmp_path / 'batching.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE item (name TEXT PRIMARY KEY)"))
    return GroupCommitWriter(make_sessionmaker(engine), refusals=(Refused,))


def add(name: str):  # type: ignore[no-untyped-def]
    def operation(session: Session) -> str:
        if name.startswith("bad"):
            raise Refused(name)
        session.connection().execute(text("INSERT INTO item (name) VALUES (:name)"), {"name": name})
        return name
    return operation


def stored(writer: GroupCommitWriter) -> set[str]:
    with writer._sessions() as session:
        return set(session.execute(text("SELECT name FROM item")).scalars())


def test_writes_that_arrive_while_the_database_is_locked_share_one_commit(writer: GroupCommitWriter) -> None:
    # Another writer (here: this test; in production another server process) holds the lock.
    lock = _WRITE_LOCKS[writer._sessions.kw["bind"]]
    with lock:
        first = writer.submit(add("first"))
        time.sleep(0.3)  # the writer has taken "first" and now waits for the lock
        later = [writer.submit(add(f"later-{i}")) for i in range(3)]
    assert first.result(timeout=10) == "first"
    assert [f.result(timeout=10) for f in later] == ["later-0", "later-1", "later-2"]
    assert (writer.batches, writer.operations) == (1, 4)
    assert stored(writer) == {"first", "later-0", "later-1", "later-2"}


def test_a_refusal_answers_its_caller_alone_and_changes_nothing(writer: GroupCommitWriter) -> None:
    lock = _WRITE_LOCKS[writer._sessions.kw["bind"]]
    with lock:
        futures = [writer.submit(add(name)) for name in ("one", "bad-two", "three")]
        time.sleep(0.3)
    assert futures[0].result(timeout=10) == "one"
    with pytest.raises(Refused):
        futures[1].result(timeout=10)
    assert futures[2].result(timeout=10) == "three"
    assert stored(writer) == {"one", "three"}
