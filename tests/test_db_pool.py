"""PostgreSQL connections lost while pooled (a database restart, an idle timeout): an idle
connection is checked before use and replaced; a busy one is not pinged every time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from tests.conftest import BACKEND, PG_ADMIN_URL
from tipline import db

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite has no server connection to lose")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _terminate(pid: int) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()


def test_an_idle_connection_that_was_lost_is_replaced_before_use(engine: Engine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend_pid(engine)
    _terminate(first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # every pooled connection counts as idle
    second = _backend_pid(engine)  # no error: the ping found it dead and a new one was made
    assert second != first


def test_a_recently_used_connection_is_not_pinged_and_recovers_after_one_failure(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 3600.0)
    first = _backend_pid(engine)
    _terminate(first)
    # Used a moment ago, so not pinged: the loss shows in this transaction only...
    with pytest.raises(OperationalError):
        _backend_pid(engine)
    # ...and the pool has replaced the connection for the next one.
    assert _backend_pid(engine) != first
