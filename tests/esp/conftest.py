"""Fixtures for the partner (ESP) API: its tables, an app with its router, a partner."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tipline.app import create_app
from tipline.context import AppContext
from tipline.db import transaction
from tipline.esp import service
from tipline.settings import Settings

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def esp_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, "partner"), base_url="http://testserver") as client:
        yield client


@pytest.fixture
def esp_ctx(esp_client: TestClient) -> AppContext:
    ctx: AppContext = esp_client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_partner(sessions: sessionmaker[Session], name: str) -> service.Credentials:
    with transaction(sessions) as session:
        return service.create_partner(session, name=name, actor="test")


@pytest.fixture
def partner(sessions: sessionmaker[Session]) -> service.Credentials:
    return make_partner(sessions, "Example Photo App")


@pytest.fixture
def auth(partner: service.Credentials) -> dict[str, str]:
    return basic(partner.username, partner.password)
