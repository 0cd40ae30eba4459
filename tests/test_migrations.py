"""The migrations build exactly the schema the models describe, on the backend under test."""

from __future__ import annotations

from sqlalchemy import inspect

from tipline.db import make_engine
from tipline.models import Base


def test_every_table_and_index_exists(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        inspector = inspect(engine)
        assert set(Base.metadata.tables) <= set(inspector.get_table_names())
        for table in Base.metadata.sorted_tables:
            present = {ix["name"] for ix in inspector.get_indexes(table.name)}
            wanted = {ix.name for ix in table.indexes}
            assert wanted <= present, (table.name, wanted - present)
    finally:
        engine.dispose()


def test_the_audit_chain_starts_with_a_head_row(database_url: str) -> None:
    from sqlalchemy import text

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar_one() == 0
    finally:
        engine.dispose()
