"""`tipline partners create NAME --json` prints working credentials once."""

from __future__ import annotations

import json

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import environment_for
from tests.esp.conftest import basic
from tipline.cli.partners import partners
from tipline.esp.models import Partner
from tipline.settings import Settings


def test_create_prints_credentials_that_work(settings: Settings, esp_client: TestClient,
                                             sessions: sessionmaker[Session]) -> None:
    result = CliRunner().invoke(partners, ["create", "Example Games Ltd", "--json"],
                                env=environment_for(settings))
    assert result.exit_code == 0, result.output
    credentials = json.loads(result.output)
    assert set(credentials) == {"username", "password"}
    with sessions() as session:
        row = session.execute(select(Partner)).scalar_one()
    assert row.name == "Example Games Ltd" and row.password_hash.startswith("$argon2id$")
    assert credentials["password"] not in row.password_hash
    response = esp_client.get("/ispws/status", headers=basic(credentials["username"], credentials["password"]))
    assert response.status_code == 200 and "<responseCode>0</responseCode>" in response.text
