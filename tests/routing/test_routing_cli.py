from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from tipline.cli.directory import directory
from tipline.db import make_engine, make_sessionmaker
from tipline.routing.models import DirectoryOrganisation
from tipline.settings import Settings


def _org_count(settings: Settings) -> int:
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return session.scalar(select(func.count()).select_from(DirectoryOrganisation)) or 0
    finally:
        engine.dispose()


def test_import_bundled_then_show(routing_cli_env: Settings) -> None:
    runner = CliRunner()
    first = runner.invoke(directory, ["import"])
    assert first.exit_code == 0, first.output
    assert "Organisations: 198 added, 0 updated, 0 removed, 0 unchanged." in first.output
    again = runner.invoke(directory, ["import"])
    assert "0 added, 0 updated, 0 removed, 198 unchanged." in again.output

    shown = runner.invoke(directory, ["show", "gb"])
    assert shown.exit_code == 0
    assert "Emergency: 999 (chosen by hand); others: 112" in shown.output
    assert "gb-childline [helpline] Childline (NSPCC)  [unconfirmed]" in shown.output


def test_bad_file_exits_1_names_the_problem_and_changes_nothing(
    routing_cli_env: Settings, routing_write: Any, routing_document: dict[str, Any]
) -> None:
    runner = CliRunner()
    assert runner.invoke(directory, ["import"]).exit_code == 0
    routing_document["organisations"][0]["url"] = "ftp://example.org"
    result = runner.invoke(directory, ["import", str(routing_write(routing_document))])
    assert result.exit_code == 1
    assert "nothing was changed" in result.output
    assert "organisations[0] (id 'gb-one').url: must be a web address" in result.output
    assert _org_count(routing_cli_env) == 198


def test_check_validates_without_importing(
    routing_cli_env: Settings, routing_write: Any, routing_document: dict[str, Any]
) -> None:
    result = CliRunner().invoke(directory, ["check", str(routing_write(routing_document))])
    assert result.exit_code == 0
    assert "4 organisations" in result.output
    assert _org_count(routing_cli_env) == 0
    broken = routing_write({"organisations": {}}, "broken.json")
    assert json.loads(broken.read_text())
    assert CliRunner().invoke(directory, ["check", str(broken)]).exit_code == 1
