from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import TypeDecorator

from tipline.db import make_engine
from tipline.models import Base

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write Tipline's column types as their portable SQL types, so migrations do not depend
    on Python classes that may change."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


# Indexes with a DESC column: SQLite cannot reflect them for comparison, so autogenerate
# would see them as changed on every run. Migration 0005 creates them by hand and
# tests/test_migrations.py checks that they exist.
HAND_WRITTEN_INDEXES = frozenset({"ix_report_queue", "ix_report_priority_order"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "index" and name in HAND_WRITTEN_INDEXES)


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
