"""End to end: reports filed through the public API that share a phone number written two
ways are related both ways on the analyst's report page, and the later one ranks higher."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import report_json
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.reports.models import Report


def file_report(client: TestClient, **overrides: Any) -> Report:
    fields = report_json(urls=[], suspect={"details": "No name given."})
    fields.update(overrides)
    response = client.post("/api/v1/reports", json=fields)
    assert response.status_code == 201, response.text
    reference = response.json()["reference"]
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.sessions() as session:
        return session.execute(select(Report).where(Report.reference == reference)).scalar_one()


def test_shared_phone_relates_reports_and_raises_priority(
    client: TestClient, staff_client: Callable[..., TestClient],
) -> None:
    first = file_report(client, child_country="GB", suspect={"phones": ["020 7946 0958"]},
                        description="Someone texts my daughter from an unknown number.")
    second = file_report(client, child_country="US",
                         description="He gave the child his number, 0044 20 7946 0958, and asked for photos.")
    unrelated = file_report(client, child_country="GB", suspect={"phones": ["020 7946 0123"]},
                            description="Someone texts my daughter from an unknown number.")

    analyst = staff_client(Role.analyst)
    first_page = analyst.get(f"/staff/reports/{first.id}")
    second_page = analyst.get(f"/staff/reports/{second.id}")
    assert first_page.status_code == second_page.status_code == 200
    assert second.reference in first_page.text and first.reference in second_page.text
    assert "phone: +442079460958" in first_page.text
    assert unrelated.reference not in first_page.text + second_page.text
    assert "No other report shares an identifier" in analyst.get(f"/staff/reports/{unrelated.id}").text

    reason = "1 other report(s) about the same suspect"
    assert reason in second.priority_reasons and reason in second_page.text
    assert reason not in first.priority_reasons
    # The two reports earn the same points otherwise; the shared suspect adds its own.
    assert second.priority_score > first.priority_score
