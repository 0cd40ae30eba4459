"""Fixtures for the routing tests, built on the shared ones (migrated database, real app).
Named routing_* so they never shadow fixtures elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tipline.context import AppContext
from tipline.db import transaction
from tipline.routing import service
from tipline.settings import Settings


@pytest.fixture
def routing_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return sessions


@pytest.fixture
def routing_document() -> dict[str, Any]:
    """A made-up directory: invented organisations, real-looking shapes."""

    def org(ident: str, **values: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "id": ident, "country": "GB", "name": f"Example {ident}", "kind": "hotline",
            "handles": ["csam"], "url": f"https://{ident}.example.org", "report_url": None,
            "phone": None, "anonymous_reports": None, "notes": "", "source": "test",
            "confidence": "high", "subdivisions": [], "coverage": None, "verify": False,
        }
        base.update(values)
        return base

    return {
        "organisations": [
            org("gb-one", name="Example Hotline One", anonymous_reports=True),
            org("gb-two", kind="police", phone="999 (emergency)", confidence="low", verify=True),
            org("int-body", country=None, scope="international", kind="international"),
            org("us-cps-zz", country="US", kind="child-welfare", subdivisions=["US-CA"],
                phone="+1-555-0100"),
        ],
        "emergency_numbers_by_region": {
            "numbers": {"GB": ["112", "999"], "FJ": ["911", "917"], "BF": ["17", "18"]},
        },
        "emergency_primary": {"GB": "999"},
    }


@pytest.fixture
def routing_write(tmp_path: Path) -> Any:
    def write(document: dict[str, Any], name: str = "directory.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    return write


@pytest.fixture
def routing_client(client: TestClient, ctx: AppContext) -> TestClient:
    """The whole app, with the bundled directory imported into its database."""
    with transaction(ctx.sessions) as session:
        service.import_directory(session, service.bundled_directory())
    ctx.directory.reload()
    client.follow_redirects = False
    return client


@pytest.fixture
def routing_cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TIPLINE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TIPLINE_DATABASE_URL", settings.resolved_database_url)
    return settings
