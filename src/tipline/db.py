"""Database plumbing: declarative base, portable column types, engines and transactions."""

from __future__ import annotations

import fcntl
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import DateTime, MetaData, String, Table, TypeDecorator, create_engine, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StrEnumType(TypeDecorator[Any]):
    """Stores an Enum by its value in a plain string column (portable, easy to migrate)."""

    impl = String(40)
    cache_ok = True

    def __init__(self, enum_class: type[Enum], length: int = 40) -> None:
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return str(self.enum_class(value).value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else self.enum_class(value)


class SqliteWriteLock:
    """SQLite has one writer at a time. Writers queue on this lock instead of polling
    SQLite's busy handler, whose growing sleeps make the slowest writers very slow: threads
    of this process on a re-entrant lock, and processes (`tipline serve --workers N`) on an
    exclusive flock of a file beside the database, which the kernel hands over in order."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._path = f"{database}-writer.lock" if database and database != ":memory:" else None
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._depth == 0 and self._path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                    weakref.finalize(self, os.close, self._fd)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, SqliteWriteLock] = weakref.WeakKeyDictionary()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs,
        )
        _configure_sqlite(engine)
        _WRITE_LOCKS[engine] = SqliteWriteLock(engine.url.database)
        return engine
    engine = create_engine(url, **{"pool_size": 10, "max_overflow": 20,
                                   "connect_args": {"prepare_threshold": PREPARE_AFTER}, **kwargs})
    # Many rows inserted at once (audit entries, custody events, a batch's reports) go as one
    # multi-row INSERT, not one statement per row: PostgreSQL then plans and runs one
    # statement, which costs it a fraction of the per-row executions.
    engine.dialect.use_insertmanyvalues_wo_returning = True
    _ping_idle_connections(engine)
    return engine


# psycopg prepares a statement on the server once a connection has run it this many times
# (its default is 5). Batches make statements whose text varies with their row count (a
# multi-row INSERT, an IN list), and most variants never reached five uses on one
# connection, so PostgreSQL parsed and planned them afresh each time.
PREPARE_AFTER = 1
PING_AFTER_IDLE = 5.0  # seconds


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle a while (a database
    restart or a network timeout happens then). Pinging on every checkout, as
    `pool_pre_ping` does, costs a round trip per transaction, and the partner writer and
    hash worker run hundreds a second. A connection lost while in use fails that one
    transaction; SQLAlchemy then replaces every pooled connection."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out another (up to 3 tries).
            raise DisconnectionError("the pooled connection is gone") from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged report survives power loss too, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock up front, so two writers never deadlock on an upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # Every model, so that relationships between domains resolve whatever was imported.
    import tipline.models  # noqa: F401
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits when the block ends, rolls back on any error."""
    bind = factory.kw.get("bind")
    lock = _WRITE_LOCKS.get(bind) if isinstance(bind, Engine) else None
    with lock if lock is not None else nullcontext():
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def insert_new(session: Session, objects: Iterable[Base]) -> None:
    """Write rows built as ORM objects with one Core executemany per table, in the order
    the tables first appear (parents before children), bypassing the unit of work.

    For rows written once and not read back in the same transaction (a partner batch's
    reports, identifiers, evidence and custody events), the ORM's flush bookkeeping costs
    several times the insert itself. The objects stay transient: later changes to them
    are not saved."""
    tables: dict[Table, list[dict[str, Any]]] = {}
    for obj in objects:
        table = obj.__table__
        assert isinstance(table, Table)
        values = obj.__dict__
        row: dict[str, Any] = {}
        for column in table.columns:
            if column.key in values:
                row[column.key] = values[column.key]
            elif column.default is None:
                row[column.key] = None
            else:
                # The column's Python default, as a flush would apply it (callables take a context).
                default: Any = column.default
                row[column.key] = default.arg if default.is_scalar else default.arg(None)
        tables.setdefault(table, []).append(row)
    connection = session.connection()
    for table, rows in tables.items():
        connection.execute(table.insert(), rows)
