"""Suggesting the agency for a report: the child's place, then the suspect's, then the
reporter's; region before country; child welfare next to the police for the child."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.helpers import report_json
from tipline.accounts import service as accounts
from tipline.accounts.models import Agency
from tipline.cli.agencies import agencies
from tipline.db import transaction
from tipline.reports.models import Report
from tipline.routing.suggest import region_code, suggest_agencies
from tipline.settings import Settings


@pytest.mark.parametrize(("country", "text", "expected"), [
    ("US", "Ohio", "US-OH"),
    ("US", "OH", "US-OH"),
    ("US", "oh", "US-OH"),
    ("US", "us-oh", "US-OH"),
    ("US", "Cleveland, Ohio", "US-OH"),
    ("US", "  cleveland ,  OHIO ", "US-OH"),
    ("US", "Washington, D.C.", "US-DC"),
    ("US", "Seattle, Washington", "US-WA"),
    ("US", "Kansas City, Missouri", "US-MO"),
    ("US", "near Charleston West Virginia", "US-WV"),
    ("US", "Columbus OH 43004", "US-OH"),
    ("US", "I live in a small town", None),
    ("US", "somewhere", None),
    ("US", "", None),
    ("GB", "Ohio", None),
    ("GB", "GB-SCT", "GB-SCT"),
    ("GB", "US-OH", None),
    (None, "Ohio", None),
])
def test_region_code_reads_free_text(country: str | None, text: str, expected: str | None) -> None:
    assert region_code(country, text) == expected


def _agency(session: Session, name: str, kind: str, *codes: str, active: bool = True) -> uuid.UUID:
    agency = accounts.create_agency(session, name=name, kind=kind, jurisdictions=list(codes), actor="test")
    agency.active = active
    return agency.id


def _file(client: TestClient, sessions: sessionmaker[Session], **overrides: Any) -> Report:
    response = client.post("/api/v1/reports", json=report_json(**overrides))
    assert response.status_code == 201, response.text
    with sessions() as session:
        report = session.execute(select(Report).where(
            Report.reference == response.json()["reference"])).scalar_one()
        session.expunge(report)
        return report


def _suggest(sessions: sessionmaker[Session], report: Report) -> list[tuple[str, str, str]]:
    with sessions() as session:
        return [(s.agency_name, s.basis, s.reason) for s in suggest_agencies(session, report)]


def test_child_in_ohio_gets_state_police_and_welfare_before_national(
    client: TestClient, sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        _agency(session, "Ohio Task Force", "police", "US-OH")
        _agency(session, "Ohio Children Services", "child-welfare", "US-OH")
        _agency(session, "National Police", "police", "US")
        _agency(session, "National Hotline", "hotline", "US")
        _agency(session, "Texas Children Services", "child-welfare", "US-TX")
        _agency(session, "Old Ohio Unit", "police", "US-OH", active=False)
        _agency(session, "British Police", "police", "GB")
    report = _file(client, sessions, child_country="US", child_region="Cleveland, Ohio")
    found = _suggest(sessions, report)
    assert [name for name, _basis, _reason in found] == [
        "Ohio Task Force", "Ohio Children Services", "National Police", "National Hotline"]
    assert {basis for _name, basis, _reason in found} == {"child"}
    reasons = {name: reason for name, _basis, reason in found}
    assert reasons["Ohio Task Force"] == (
        "child's location: US-OH (Ohio), given as “Cleveland, Ohio”; the agency covers US-OH")
    assert reasons["Ohio Children Services"].endswith("a child may need protection there")
    assert reasons["National Police"].endswith("the agency covers US")


def test_plain_state_name_is_not_repeated_in_the_reason(
    client: TestClient, sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        _agency(session, "Ohio Task Force", "police", "US-OH")
    report = _file(client, sessions, child_country="US", child_region="OH")
    assert _suggest(sessions, report) == [
        ("Ohio Task Force", "child", "child's location: US-OH (Ohio); the agency covers US-OH")]


def test_then_the_suspect_then_the_reporter(client: TestClient, sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        _agency(session, "Canadian Hotline", "hotline", "CA")
        _agency(session, "British Police", "police", "GB")
        _agency(session, "British Welfare", "child-welfare", "GB")
        _agency(session, "French Police", "police", "FR")
    report = _file(
        client, sessions, child_country="FR", child_region="",
        suspect={"usernames": ["quietowl"], "phones": ["+44 7700 900123"]},
        reporter_country="CA",
    )
    found = _suggest(sessions, report)
    assert [(name, basis) for name, basis, _reason in found] == [
        ("French Police", "child"), ("British Police", "suspect"), ("Canadian Hotline", "reporter")]
    assert found[0][2].startswith("child's location: FR (France)")
    assert found[1][2].startswith("suspect's phone number is from GB (United Kingdom)")
    assert found[2][2].startswith("reporter's location: CA (Canada)")
    # Child welfare protects the child where the child is, not where the suspect lives.
    assert "British Welfare" not in [name for name, _basis, _reason in found]


def test_an_agency_is_suggested_once_under_its_strongest_reason(
    client: TestClient, sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        _agency(session, "National Police", "police", "US")
    report = _file(client, sessions, child_country="US", child_region="Ohio", reporter_country="US")
    assert [(name, basis) for name, basis, _reason in _suggest(sessions, report)] == [
        ("National Police", "child")]


def test_nothing_known_or_nothing_covering_gives_no_suggestion(
    client: TestClient, sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        _agency(session, "British Police", "police", "GB")
    unknown = _file(client, sessions, child_country=None, child_region="", reporter_country=None,
                    suspect={"phones": ["0123 456"]})
    assert _suggest(sessions, unknown) == []
    elsewhere = _file(client, sessions, child_country="DE", child_region="", reporter_country="AT")
    assert _suggest(sessions, elsewhere) == []


def test_agencies_from_the_bundled_directory(
    routing_client: TestClient, routing_cli_env: Settings, sessions: sessionmaker[Session],
) -> None:
    runner = CliRunner()
    first = runner.invoke(agencies, ["from-directory", "--country", "us"])
    assert first.exit_code == 0, first.output
    with sessions() as session:
        rows = {a.directory_id: a for a in session.scalars(select(Agency))}
    assert rows["us-icac-ohio-icac-task-force"].jurisdictions == ["US-OH"]
    assert rows["us-icac-ohio-icac-task-force"].kind == "police"
    assert rows["us-cps-oh"].kind == "child-welfare"
    assert rows["us-ncmec-cybertipline"].jurisdictions == ["US"]
    assert rows["us-ncmec-cybertipline"].accepts_anonymous is True
    assert {a.jurisdictions[0][:2] for a in rows.values()} == {"US"}
    assert f"Agencies: {len(rows)} created" in first.output

    again = runner.invoke(agencies, ["from-directory", "--country", "US"])
    assert again.exit_code == 0, again.output
    assert f"Agencies: 0 created, {len(rows)} already present." in again.output

    report = _file(routing_client, sessions, child_country="US", child_region="Ohio")
    found = _suggest(sessions, report)
    assert found[0][0] == rows["us-icac-ohio-icac-task-force"].name
    assert found[1][0] == rows["us-cps-oh"].name
    assert all(basis == "child" for _name, basis, _reason in found)
    assert not any("Texas" in name for name, _basis, _reason in found)

    bad = runner.invoke(agencies, ["from-directory", "--country", "XX"])
    assert bad.exit_code != 0 and "XX" in bad.output


def test_from_directory_needs_an_imported_directory(routing_cli_env: Settings) -> None:
    result = CliRunner().invoke(agencies, ["from-directory"])
    assert result.exit_code != 0
    assert "tipline directory import" in result.output
