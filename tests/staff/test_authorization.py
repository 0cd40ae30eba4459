"""Every staff route × every role (and anonymous): allowed or denied as the matrix says.
A route missing from the matrix fails the test, so nothing new ships unreviewed."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import csrf_token, png_bytes, report_json
from tests.staff.conftest import make_agency, make_user
from tests.test_surfaces import flatten
from tipline.accounts import service as accounts
from tipline.accounts.permissions import Role
from tipline.cases import service as cases
from tipline.db import transaction
from tipline.evidence.models import EvidenceFile
from tipline.matching import banks
from tipline.matching.models import BankImport, CategoryScheme, JobState
from tipline.reports.models import Report

ANALYSTS = {"analyst", "supervisor", "admin"}
ALL_STAFF = ANALYSTS | {"agency_officer"}
EVERYONE = ALL_STAFF | {"anonymous"}

# (method, path) -> who may use it. Officers reach reports only through their referrals;
# here the report was not referred to their agency, so they must not see it.
MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/staff/login"): EVERYONE,
    ("POST", "/staff/login"): EVERYONE,
    ("GET", "/staff/2fa"): EVERYONE,
    ("POST", "/staff/2fa"): EVERYONE,
    ("POST", "/staff/logout"): EVERYONE,
    ("GET", "/staff/admin/users"): {"admin"},
    ("POST", "/staff/admin/users"): {"admin"},
    ("POST", "/staff/admin/users/{user_id}/{action}"): {"admin"},
    ("GET", "/staff/admin/agencies"): {"admin"},
    ("POST", "/staff/admin/agencies"): {"admin"},
    ("GET", "/staff/queue"): ANALYSTS,
    ("GET", "/staff/reports/new"): ANALYSTS,
    ("POST", "/staff/reports/new"): ANALYSTS,
    ("GET", "/staff/reports/{report_id}"): ANALYSTS,
    ("GET", "/staff/reports/{report_id}/contact"): ANALYSTS,
    ("POST", "/staff/reports/{report_id}/{action}"): ANALYSTS,
    ("GET", "/staff/evidence/{evidence_id}/preview"): ANALYSTS,
    ("POST", "/staff/evidence/{evidence_id}/reveal"): ANALYSTS,
    ("GET", "/staff/evidence/{evidence_id}/original"): set(),  # needs a reveal grant: tested elsewhere
    ("GET", "/staff/stats"): {"supervisor", "admin"},
    ("GET", "/staff/stats.csv"): {"supervisor", "admin"},
    ("GET", "/staff/reports/{report_id}/referrals"): ANALYSTS,
    ("POST", "/staff/reports/{report_id}/referrals/new"): ANALYSTS,
    ("GET", "/staff/cases"): ALL_STAFF,
    ("GET", "/staff/cases/signing-key"): ALL_STAFF,
    # The referral below went to another agency than the matrix officer's.
    ("GET", "/staff/cases/{referral_id}"): ANALYSTS,
    ("POST", "/staff/cases/{referral_id}/accept"): set(),
    ("POST", "/staff/cases/{referral_id}/decline"): set(),
    ("POST", "/staff/cases/{referral_id}/status"): set(),
    ("POST", "/staff/cases/{referral_id}/items"): set(),
    ("POST", "/staff/cases/{referral_id}/items/{item_id}/transfer"): set(),
    ("POST", "/staff/cases/{referral_id}/package"): ANALYSTS,
    ("GET", "/staff/banks"): {"admin"},
    ("POST", "/staff/banks"): {"admin"},
    ("GET", "/staff/banks/{bank_id}"): {"admin"},
    ("POST", "/staff/banks/{bank_id}/enabled"): {"admin"},
    ("POST", "/staff/banks/{bank_id}/threshold"): {"admin"},
    ("POST", "/staff/banks/{bank_id}/imports"): {"admin"},
    ("GET", "/staff/banks/{bank_id}/imports/{import_id}"): {"admin"},
    ("GET", "/staff/banks/{bank_id}/export.csv"): {"admin"},
    ("GET", "/staff/banks/{bank_id}/export.json"): {"admin"},
}
# Routes open to everyone by design, so they prove nothing about access control.
PUBLIC_BY_DESIGN = {p for p, who in MATRIX.items() if who == EVERYONE}


def staff_routes(client: TestClient) -> set[tuple[str, str]]:
    found = set()
    for route in flatten(list(client.app.routes)):  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if path.startswith("/staff"):
            found.update((m, path) for m in getattr(route, "methods", set()) - {"HEAD"})
    return found


def test_every_staff_route_is_in_the_matrix(client: TestClient) -> None:
    assert staff_routes(client) == set(MATRIX)


@pytest.fixture
def objects(client: TestClient, ctx) -> dict[str, str]:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/reports", files=[
        ("report", (None, json.dumps(report_json(anonymous=False, contact={"name": "Pat Example"})))),
        ("files", ("a.png", png_bytes(seed=1), "image/png"))])
    assert response.status_code == 201
    with ctx.sessions() as session:
        report = session.execute(select(Report)).scalar_one()
        item = session.execute(select(EvidenceFile)).scalar_one()
        values = {"report_id": str(report.id), "evidence_id": str(item.id)}
    values["user_id"] = str(make_user(ctx, Role.analyst))
    home_police = make_agency(ctx, "Home Police", ("US",))
    with transaction(ctx.sessions) as session:
        report = session.get(Report, uuid.UUID(values["report_id"]))
        assert report is not None
        referrer = accounts.as_staff(accounts.get_user(session, uuid.UUID(values["user_id"])))
        choice = cases.ReferralChoice(agency_id=home_police, reason="matrix check")
        referrals = cases.refer_report(session, report, [choice], staff=referrer)
        values["referral_id"] = str(referrals[0].id)
        bank = banks.create_bank(session, name="Matrix bank", category_scheme=CategoryScheme.industry,
                                 actor="test")
        done = BankImport(bank_id=bank.id, filename="matrix.txt", format="plain", actor="test",
                          state=JobState.done, started_at=bank.created_at, rejects=[])
        session.add(done)
        session.flush()
        values["bank_id"], values["import_id"] = str(bank.id), str(done.id)
    return values


def fill(path: str, objects: dict[str, str]) -> str:
    actions = {"/staff/reports/{report_id}/{action}": "note", "/staff/admin/users/{user_id}/{action}": "reset-2fa"}
    path = path.replace("{action}", actions.get(path, "x").split("/")[-1]) if "{action}" in path else path
    return re.sub(r"\{(\w+)\}", lambda m: objects.get(m.group(1), str(uuid.uuid4())), path)


def outcome(client: TestClient, method: str, path: str) -> int:
    token = csrf_token(client.get("/staff/login").text)
    data: dict[str, Any] = {"csrf_token": token, "body": "matrix check", "reason": "matrix check"}
    if method == "GET":
        return client.get(path, follow_redirects=False).status_code
    if path == "/staff/reports/new":
        return client.post(path, files=[("csrf_token", (None, token))], follow_redirects=False).status_code
    return client.post(path, data=data, follow_redirects=False).status_code


@pytest.mark.parametrize("role", sorted(EVERYONE))
def test_matrix(client: TestClient, ctx, staff_client, objects, role: str) -> None:  # type: ignore[no-untyped-def]
    if role == "anonymous":
        who = TestClient(client.app)
    elif role == "agency_officer":
        who = staff_client(Role.agency_officer, agency_id=make_agency(ctx, "Elsewhere Police", ("FR",)))
    else:
        who = staff_client(Role(role))
    wrong = []
    for (method, path), allowed in sorted(MATRIX.items()):
        if (method, path) in PUBLIC_BY_DESIGN or (method, path) == ("POST", "/staff/logout"):
            continue
        status = outcome(who, method, fill(path, objects))
        denied = status in (401, 403, 404) or (role == "anonymous" and status == 303)
        if (role in allowed) == denied:
            wrong.append(f"{method} {path}: {role} got {status}")
    assert wrong == []
