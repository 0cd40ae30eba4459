"""A file the partner never viewed needs a recorded legal basis before staff may open it."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.esp.test_api import code_of, submit, upload
from tests.helpers import csrf_token, png_bytes
from tests.staff.conftest import staff_client  # noqa: F401 (fixture)
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.evidence.models import CustodyEvent
from tipline.reports.models import Report


def test_reveal_of_an_unviewed_partner_file_needs_a_legal_basis(
    esp_client: TestClient, auth: dict[str, str], ctx: AppContext,
    staff_client: Callable[..., TestClient],  # noqa: F811 (the imported fixture)
) -> None:
    report_id = submit(esp_client, auth)
    assert code_of(upload(esp_client, auth, report_id, png_bytes(seed=3))) == 0
    finished = esp_client.post("/ispws/finish", headers=auth, data={"id": str(report_id)})
    assert code_of(finished.text) == 0
    with ctx.sessions() as session:
        tipline_id = session.execute(select(Report.id)).scalar_one()

    analyst = staff_client(Role.analyst)
    page = analyst.get(f"/staff/reports/{tipline_id}")
    assert "a legal basis is needed before anyone opens it" in page.text
    evidence_id = re.search(r'/staff/evidence/([0-9a-f-]+)/reveal', page.text).group(1)  # type: ignore[union-attr]
    refused = analyst.post(f"/staff/evidence/{evidence_id}/reveal",
                           data={"csrf_token": csrf_token(page.text), "reason": "triage"})
    assert refused.status_code == 422 and "Record the legal basis" in refused.text
    with ctx.sessions() as session:
        assert "viewed" not in [e.action for e in session.execute(select(CustodyEvent)).scalars()]
    opened = analyst.post(f"/staff/evidence/{evidence_id}/reveal", data={
        "csrf_token": csrf_token(page.text), "reason": "triage", "legal_basis": "Warrant 2026-0042"})
    assert opened.status_code == 200 and "original?grant=" in opened.text
    with ctx.sessions() as session:
        viewed = [e for e in session.execute(select(CustodyEvent)).scalars() if e.action == "viewed"]
    assert len(viewed) == 1 and "Warrant 2026-0042" in viewed[0].details
