"""`tipline partners create NAME --json` prints working credentials once; list, disable,
enable and reset-password manage them; expired open reports and their files are purged by
`tipline partners purge-expired` and by the partner server itself."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import environment_for
from tests.esp.conftest import basic
from tests.esp.test_api import code_of, submit, upload
from tests.helpers import png_bytes
from tipline import clock
from tipline.app import create_app
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


def test_disable_enable_and_reset_password(settings: Settings) -> None:
    env = environment_for(settings)
    runner = CliRunner()
    made = json.loads(runner.invoke(partners, ["create", "Example Chat Co", "--json"], env=env).output)
    user, password = made["username"], made["password"]
    listed = json.loads(runner.invoke(partners, ["list", "--json"], env=env).output)
    assert [(r["username"], r["name"], r["active"]) for r in listed] == [(user, "Example Chat Co", True)]
    assert password not in runner.invoke(partners, ["list"], env=env).output

    def status(username: str, secret: str) -> int:
        # A new app each time: no credentials cached from an earlier call.
        with TestClient(create_app(settings, "partner")) as fresh:
            return fresh.get("/ispws/status", headers=basic(username, secret)).status_code

    assert status(user, password) == 200
    off = runner.invoke(partners, ["disable", user], env=env)
    assert off.exit_code == 0 and "disabled" in off.output and "30 seconds" in off.output
    assert status(user, password) == 401
    assert "DISABLED" in runner.invoke(partners, ["list"], env=env).output
    assert runner.invoke(partners, ["enable", user], env=env).exit_code == 0
    assert status(user, password) == 200

    reset = runner.invoke(partners, ["reset-password", user, "--json"], env=env)
    assert reset.exit_code == 0, reset.output
    new_password = json.loads(reset.output)["password"]
    assert new_password != password
    assert status(user, password) == 401
    assert status(user, new_password) == 200

    unknown = runner.invoke(partners, ["disable", "esp-nobody"], env=env)
    assert unknown.exit_code != 0 and "No partner account with the username 'esp-nobody'" in unknown.output


def test_a_partner_server_purges_expired_reports_by_itself(settings: Settings, sessions: sessionmaker[Session]) -> None:
    quick = settings.model_copy(update={"esp_purge_interval_seconds": 0.2})
    credentials = json.loads(CliRunner().invoke(partners, ["create", "Example Forum", "--json"],
                                                env=environment_for(settings)).output)
    auth = basic(credentials["username"], credentials["password"])
    with TestClient(create_app(quick, "partner")) as client:
        expired = submit(client, auth)
        assert code_of(upload(client, auth, expired, png_bytes(seed=12))) == 0
        clock.advance(25 * 3600)
        fresh = submit(client, auth)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sessions() as session:
                left = session.execute(select(EspReport.report_id)).scalars().all()
            if left == [fresh]:
                break
            time.sleep(0.1)
        assert left == [fresh]
        with sessions() as session:
            assert session.execute(select(EspFile)).scalars().all() == []
