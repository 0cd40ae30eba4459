"""E-mail notices to agencies, through a real SMTP server (aiosmtpd) on a free local port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.cases.conftest import World, refer
from tests.serverproc import free_port
from tests.smtp_inbox import Inbox, smtp_server
from tests.staff.conftest import make_user
from tipline.accounts.permissions import Role
from tipline.cases.models import CaseEvent, Referral


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with smtp_server(monkeypatch, link_base="https://tipline.example.org") as inbox:
        yield inbox


def events_of(ctx, report_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    with ctx.sessions() as session:
        rows = session.execute(select(CaseEvent.kind, CaseEvent.details).join(Referral)
                               .where(Referral.report_id == report_id).order_by(CaseEvent.at)).all()
        return [(kind, details) for kind, details in rows]


def test_officers_get_a_notice_with_the_reference_and_a_link_only(staff_client, ctx, world: World, smtp: Inbox) -> None:  # type: ignore[no-untyped-def]
    make_user(ctx, Role.agency_officer, agency_id=world.police, email="officer.one@police.example.org")
    make_user(ctx, Role.agency_officer, agency_id=world.police, email="officer.two@police.example.org")
    make_user(ctx, Role.agency_officer, agency_id=world.elsewhere, email="far@elsewhere.example.org")
    analyst = staff_client(Role.analyst)
    assert refer(analyst, world.report_id, {world.police: "Child lives in Ohio"}).status_code == 200
    with ctx.sessions() as session:
        referral_id = session.execute(select(Referral.id)).scalar_one()

    recipients = sorted(rcpt for rcpts, _msg in smtp.messages for rcpt in rcpts)
    assert recipients == ["officer.one@police.example.org", "officer.two@police.example.org"]
    for _rcpts, message in smtp.messages:
        body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
        assert world.reference in message["Subject"] and world.reference in body
        assert f"https://tipline.example.org/staff/cases/{referral_id}" in body
        assert message["From"] == "tipline@example.org"
        # Nothing the reporter wrote (description, platform, names, links), not even the reason.
        for secret in ("PixelPlay", "quietowl", "camera", "11-year-old", "Child lives"):
            assert secret not in body and secret not in message["Subject"], secret
    assert [k for k, _d in events_of(ctx, world.report_id)][-1] == "notified"


def test_a_failed_notice_is_recorded_and_never_loses_the_referral(staff_client, ctx, world: World, smtp: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    make_user(ctx, Role.agency_officer, agency_id=world.police, email="officer@police.example.org")
    monkeypatch.setenv("TIPLINE_SMTP_PORT", str(free_port()))  # nobody listens there
    analyst = staff_client(Role.analyst)
    response = refer(analyst, world.report_id, {world.police: "Child lives in Ohio"})
    assert response.status_code == 200 and "Referred." in response.text
    kinds = events_of(ctx, world.report_id)
    assert [k for k, _d in kinds] == ["referred", "notice_failed"]
    assert "ConnectionRefusedError" in kinds[-1][1]["error"]
    assert smtp.messages == []
    with ctx.sessions() as session:
        referral = session.execute(select(Referral)).scalar_one()
    officer_case = analyst.get(f"/staff/cases/{referral.id}")
    assert "E-mail notice could not be sent" in officer_case.text
