"""On PostgreSQL, many rows inserted at once (a batch's audit entries, custody events,
reports) go to the server as one multi-row INSERT, and every row arrives."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select

from tests.conftest import BACKEND
from tipline import db

pytestmark = pytest.mark.skipif(BACKEND != "postgresql",
                                reason="SQLite takes an executemany as one driver call already")


def test_rows_inserted_together_are_one_statement_and_all_arrive(database_url: str) -> None:
    engine = db.make_engine(database_url, pool_size=1, max_overflow=0)
    metadata = MetaData()
    table = Table("invented_rows", metadata, Column("id", Integer, primary_key=True), Column("name", String(40)))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_rest: statements.append(statement))
    try:
        metadata.create_all(engine)
        rows = [{"id": n, "name": f"invented name {n}"} for n in range(7)]
        statements.clear()
        with engine.begin() as connection:
            connection.execute(insert(table), rows)
        inserts = [s for s in statements if s.startswith("INSERT")]
        assert len(inserts) == 1 and inserts[0].count("), (") == len(rows) - 1, inserts
        with engine.connect() as connection:
            assert [dict(r._mapping) for r in connection.execute(select(table).order_by(table.c.id))] == rows
    finally:
        metadata.drop_all(engine)
        engine.dispose()
