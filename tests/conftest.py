"""Shared fixtures: real databases (SQLite file or PostgreSQL) built from the migrations,
a fresh data directory with real key files per test, and the app over them."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from tipline import clock, crypto, migrations
from tipline.app import create_app
from tipline.context import AppContext
from tipline.db import Base, make_engine, make_sessionmaker
from tipline.settings import Settings

BACKEND = os.environ.get("TIPLINE_TEST_DATABASE", "sqlite")
PG_ADMIN_URL = os.environ.get("TIPLINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: a template file for SQLite, a whole database for PostgreSQL."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        migrations.upgrade_url(f"sqlite:///{path}")
        yield str(path)
        return
    name = f"tipline_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrations.upgrade_url(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _clean_postgres(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
        conn.execute(text("INSERT INTO audit_head (id, seq, row_hash) VALUES (1, 0, :zero)"),
                     {"zero": "0" * 64})
    engine.dispose()


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> Iterator[str]:
    if BACKEND == "sqlite":
        path = tmp_path / "tipline.db"
        shutil.copyfile(database_template, path)
        yield f"sqlite:///{path}"
        return
    yield database_template
    _clean_postgres(database_template)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "var"
    folder.mkdir()
    crypto.create_keys(folder / "keys")
    return folder


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    # No hashing worker unless a test asks for one: its custody events would race the asserts.
    return Settings(data_dir=data_dir, database_url=database_url, quick_exit_url="about:blank",
                    hash_workers=0)


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, "all")
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    return app_client


@pytest.fixture
def ctx(app_client: TestClient) -> AppContext:
    context: AppContext = app_client.app.state.ctx  # type: ignore[attr-defined]
    return context


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.resolved_database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()


def environment_for(settings: Settings) -> dict[str, str]:
    """Environment variables that make a `tipline` subprocess use these settings."""
    env = dict(os.environ)
    env["TIPLINE_DATA_DIR"] = str(settings.data_dir)
    env["TIPLINE_DATABASE_URL"] = settings.resolved_database_url
    env["TIPLINE_QUICK_EXIT_URL"] = settings.quick_exit_url
    env["TIPLINE_HASH_WORKERS"] = str(settings.hash_workers)
    return env
