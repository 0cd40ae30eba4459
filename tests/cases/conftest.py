"""Case fixtures: agencies, officers, a report filed on the public site and referred."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.helpers import csrf_token, png_bytes, report_json
from tests.staff.conftest import make_agency, staff_client
from tipline.context import AppContext
from tipline.reports.models import Report

__all__ = ["staff_client"]

@dataclass
class World:
    police: uuid.UUID
    welfare: uuid.UUID
    elsewhere: uuid.UUID
    report_id: uuid.UUID
    reference: str


@pytest.fixture
def world(client: TestClient, ctx: AppContext) -> World:
    police = make_agency(ctx, "Example Ohio Police Unit", ("US-OH",), kind="police")
    welfare = make_agency(ctx, "Example Ohio Children Services", ("US-OH",), kind="child-welfare")
    elsewhere = make_agency(ctx, "Elsewhere Police", ("FR",), kind="police")
    response = client.post("/api/v1/reports", files=[
        ("report", (None, json.dumps(report_json()))),
        ("files", ("a.png", png_bytes(seed=3), "image/png"))])
    assert response.status_code == 201, response.text
    with ctx.sessions() as session:
        report = session.query(Report).one()
        return World(police, welfare, elsewhere, report.id, report.reference)


def refer(analyst: TestClient, report_id: uuid.UUID, agencies: dict[uuid.UUID, str]):  # type: ignore[no-untyped-def]
    form = analyst.get(f"/staff/reports/{report_id}/referrals")
    assert form.status_code == 200, form.text[:300]
    data: dict[str, object] = {"csrf_token": csrf_token(form.text), "agency": [str(a) for a in agencies],
                               "agency_row": [str(a) for a in agencies], "reason": list(agencies.values())}
    return analyst.post(f"/staff/reports/{report_id}/referrals/new", data=data)


def post(client: TestClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/staff/cases").text)
    return client.post(path, data={"csrf_token": token, **data})


StaffFactory = Callable[..., TestClient]
