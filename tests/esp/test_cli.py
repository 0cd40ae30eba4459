"""`tipline partners create NAME --json` prints working credentials once;
`tipline partners purge-expired` removes expired open reports and their files."""

from __future__ import annotations

import json

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import environment_for
from tests.esp.conftest import basic
from tests.esp.test_api import code_of, submit, upload
from tests.helpers import png_bytes
from tipline import clock
from tipline.cli.partners import partners
from tipline.context import AppContext
from tipline.esp.models import EspFile, EspReport, Partner
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


def test_purge_expired_deletes_expired_reports_and_their_files(
        settings: Settings, esp_client: TestClient, esp_ctx: AppContext, auth: dict[str, str],
        sessions: sessionmaker[Session]) -> None:
    env = environment_for(settings)
    expired = submit(esp_client, auth)
    assert code_of(upload(esp_client, auth, expired, png_bytes(seed=11))) == 0
    nothing = CliRunner().invoke(partners, ["purge-expired"], env=env)
    assert nothing.exit_code == 0, nothing.output
    assert nothing.output == "0 expired partner reports purged\n"

    clock.advance(25 * 3600)
    fresh = submit(esp_client, auth)  # opened after the clock moved: not expired
    result = CliRunner().invoke(partners, ["purge-expired"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == "1 expired partner report purged\n"
    with sessions() as session:
        assert session.execute(select(EspReport.report_id)).scalars().all() == [fresh]
        assert session.execute(select(EspFile)).scalars().all() == []
    assert list(esp_ctx.blobs.all_names()) == []
