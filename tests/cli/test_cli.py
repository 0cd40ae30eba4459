"""The `tipline` command as an operator uses it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import BACKEND, environment_for
from tests.helpers import report_json
from tipline.cli.main import cli
from tipline.settings import Settings

TIPLINE = str(Path(sys.executable).with_name("tipline"))


def test_init_creates_private_keys_database_and_directory(tmp_path: Path) -> None:
    env = dict(os.environ, TIPLINE_DATA_DIR=str(tmp_path / "data"))
    env.pop("TIPLINE_DATABASE_URL", None)
    first = subprocess.run([TIPLINE, "init"], env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    keys = tmp_path / "data" / "keys"
    for name in ("master.key", "pepper.key"):
        mode = stat.S_IMODE((keys / name).stat().st_mode)
        assert mode == 0o600, oct(mode)
        assert len((keys / name).read_bytes()) == 32
    assert (tmp_path / "data" / "tipline.db").exists()
    assert "directory:" in first.stdout
    master = (keys / "master.key").read_bytes()
    again = subprocess.run([TIPLINE, "init"], env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0
    assert (keys / "master.key").read_bytes() == master, "init must never replace a key"
    check = subprocess.run([TIPLINE, "db", "check"], env=env, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr + check.stdout


def test_reports_json_never_shows_codename_or_contact(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    contact = {"name": "Sam Placeholder", "email": "sam@example.org"}
    created = client.post("/api/v1/reports", json=report_json(anonymous=False, contact=contact)).json()
    runner = CliRunner()
    listed = runner.invoke(cli, ["reports", "list", "--json"], env=environment_for(settings))
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.output)
    assert [item["reference"] for item in items] == [created["reference"]]
    shown = runner.invoke(cli, ["reports", "show", created["reference"].lower(), "--json"],
                          env=environment_for(settings))
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert detail["description"] == report_json()["description"]
    assert detail["anonymous"] is False
    for secret in (created["codename"], "Sam Placeholder", "sam@example.org"):
        assert secret not in listed.output
        assert secret not in shown.output


def test_reports_show_unknown_reference(settings: Settings) -> None:
    result = CliRunner().invoke(cli, ["reports", "show", "TL-NOPE-NOPE"], env=environment_for(settings))
    assert result.exit_code == 1
    assert "no report 'TL-NOPE-NOPE'" in result.output


def test_commands_explain_missing_keys(tmp_path: Path) -> None:
    env = {"TIPLINE_DATA_DIR": str(tmp_path / "nothing-here")}
    if BACKEND != "sqlite":
        env["TIPLINE_DATABASE_URL"] = os.environ.get("TIPLINE_TEST_PG_URL", "")
    result = CliRunner().invoke(cli, ["vault", "verify"], env=env)
    assert result.exit_code == 1
    assert "run `tipline init` first" in result.output


def test_create_admin_then_sign_in(settings: Settings, client) -> None:  # type: ignore[no-untyped-def]
    from tests.staff.conftest import sign_in

    result = CliRunner().invoke(cli, ["users", "create-admin", "boss@example.org", "--name", "Boss",
                                      "--password-stdin"], input="a very long password\n",
                                env=environment_for(settings))
    assert result.exit_code == 0, result.output
    assert "administrator boss@example.org created" in result.output
    signed = sign_in(client, "boss@example.org", "a very long password")
    assert signed.status_code == 200 and "Users" in signed.text
    again = CliRunner().invoke(cli, ["users", "create-admin", "boss@example.org", "--password-stdin"],
                               input="a very long password\n", env=environment_for(settings))
    assert again.exit_code == 1 and "already exists" in again.output
    short = CliRunner().invoke(cli, ["users", "create-admin", "x@example.org", "--password-stdin"],
                               input="short\n", env=environment_for(settings))
    assert short.exit_code == 1 and "at least 12 characters" in short.output
