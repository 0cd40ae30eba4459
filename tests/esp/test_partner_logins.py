"""Partner logins: Argon2id runs once per set of credentials, not once per parallel request
or per aged cache entry, and a changed password or a disabled account still refuses."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.esp.conftest import basic
from tipline.accounts import passwords
from tipline.db import transaction
from tipline.esp import api, service
from tipline.esp.service import Credentials


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Argon2 verification the server runs (the real one, counted)."""
    runs: list[str] = []
    lock = threading.Lock()
    verify = passwords.verify_password

    def counted(stored: str | None, password: str) -> bool:
        with lock:
            runs.append(password)
        return verify(stored, password)

    monkeypatch.setattr(passwords, "verify_password", counted)
    return runs


def status(client: TestClient, username: str, password: str) -> int:
    return client.get("/ispws/status", headers=basic(username, password)).status_code


def test_parallel_requests_with_the_same_credentials_verify_the_password_once(
        esp_client: TestClient, partner: Credentials, argon2_runs: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _n: status(esp_client, partner.username, partner.password), range(8)))
    assert codes == [200] * 8
    assert argon2_runs == [partner.password]
    # Wrong passwords are never let through by the shared check or the cache.
    assert status(esp_client, partner.username, partner.password + "x") == 401


def test_an_aged_login_is_renewed_without_argon2_until_the_account_changes(
        esp_client: TestClient, partner: Credentials, sessions: sessionmaker[Session],
        argon2_runs: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "AUTH_CACHE_SECONDS", 0.0)  # every login is aged at once
    assert status(esp_client, partner.username, partner.password) == 200
    assert status(esp_client, partner.username, partner.password) == 200
    assert len(argon2_runs) == 1  # the second was checked against the account only

    with transaction(sessions) as session:
        renewed = service.reset_password(session, partner.username, actor="test")
    assert status(esp_client, partner.username, partner.password) == 401
    assert status(esp_client, partner.username, renewed.password) == 200
    assert len(argon2_runs) == 3

    with transaction(sessions) as session:
        service.set_active(session, partner.username, active=False, actor="test")
    assert status(esp_client, partner.username, renewed.password) == 401
    with transaction(sessions) as session:
        service.set_active(session, partner.username, active=True, actor="test")
    assert status(esp_client, partner.username, renewed.password) == 200
