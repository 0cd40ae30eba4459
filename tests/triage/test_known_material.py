"""Hash-first triage: files already known from a hash bank are labelled, never shown (not
even blurred) unless someone records why they must see them, and a report whose every file
is known can be referred without anyone viewing it.

The matches are inserted as rows in the setup (the matcher that finds them is tested in
tests/matching); the files themselves are generated pictures stored through the real API."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.cases.conftest import post, refer
from tests.esp.conftest import auth, esp_client, partner  # noqa: F401 (fixtures)
from tests.esp.test_api import code_of, submit, upload
from tests.helpers import csrf_token, png_bytes, report_json
from tests.staff.conftest import make_agency
from tipline import clock
from tipline.accounts.permissions import Role
from tipline.audit.models import AuditEntry
from tipline.cases import canonzip
from tipline.cases.models import CaseEvent
from tipline.context import AppContext
from tipline.db import transaction
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.matching import service as matching
from tipline.matching.models import BankEntry, CategoryScheme, HashBank, HashKind, HashMatch
from tipline.reports.models import Report

StaffFactory = Callable[..., TestClient]
REASON = "victim identification"


@dataclass(frozen=True)
class Filed:
    report_id: uuid.UUID
    files: list[uuid.UUID]  # in the order they were sent
    pictures: list[bytes]


def file_report(client: TestClient, ctx: AppContext, seeds: list[int], **overrides: object) -> Filed:
    pictures = [png_bytes(seed=seed) for seed in seeds]
    response = client.post("/api/v1/reports", files=[
        ("report", (None, json.dumps(report_json(**overrides)))),
        *[("files", (f"shot-{i}.png", data, "image/png")) for i, data in enumerate(pictures)]])
    assert response.status_code == 201, response.text
    with ctx.sessions() as session:
        report_id = session.execute(select(Report.id).where(
            Report.reference == response.json()["reference"])).scalar_one()
        by_digest = {f.sha256: f.id for f in session.execute(
            select(EvidenceFile).where(EvidenceFile.report_id == report_id)).scalars()}
    return Filed(report_id, [by_digest[hashlib.sha256(p).hexdigest()] for p in pictures], pictures)


def make_bank(ctx: AppContext, name: str, scheme: CategoryScheme) -> uuid.UUID:
    with transaction(ctx.sessions) as session:
        bank = HashBank(name=name, category_scheme=scheme, source="synthetic test bank",
                        created_at=clock.now(), updated_at=clock.now())
        session.add(bank)
        session.flush()
        return bank.id


def mark_known(ctx: AppContext, filed: Filed, evidence_id: uuid.UUID, bank_id: uuid.UUID, *,
               category: str | None, kind: HashKind = HashKind.pdq, distance: int = 6) -> None:
    """A bank entry (a random hash: never a real one) and the match the matcher would store."""
    with transaction(ctx.sessions) as session:
        entry = BankEntry(bank_id=bank_id, kind=kind, value=secrets.token_hex(32 if kind != HashKind.md5 else 16),
                          category=category, added_at=clock.now())
        session.add(entry)
        session.flush()
        session.add(HashMatch(report_id=filed.report_id, evidence_id=evidence_id, bank_id=bank_id,
                              entry_id=entry.id, kind=kind, distance=distance, category=category,
                              matched_at=clock.now()))


def custody(ctx: AppContext, evidence_id: uuid.UUID) -> list[CustodyEvent]:
    with ctx.sessions() as session:
        return list(session.execute(select(CustodyEvent).where(CustodyEvent.evidence_id == evidence_id)
                                    .order_by(CustodyEvent.at, CustodyEvent.id)).scalars())


def audit_actions(ctx: AppContext) -> list[str]:
    with ctx.sessions() as session:
        return list(session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())


@pytest.fixture
def mixed(client: TestClient, ctx: AppContext) -> tuple[Filed, Filed]:
    """A report with one known file (industry A1, PDQ distance 6) and one unknown file, and
    an unrelated report with nothing known."""
    filed = file_report(client, ctx, [11, 12])
    bank = make_bank(ctx, "Example Industry Bank", CategoryScheme.industry)
    mark_known(ctx, filed, filed.files[0], bank, category="A1")
    other = file_report(client, ctx, [13], description="Someone else asks for pictures.")
    return filed, other


def test_known_file_shows_the_panel_and_no_image(mixed: tuple[Filed, Filed], staff_client: StaffFactory) -> None:
    filed, other = mixed
    known, unknown = filed.files
    analyst = staff_client(Role.analyst)
    page = analyst.get(f"/staff/reports/{filed.report_id}")
    assert page.status_code == 200
    html = page.text
    # The summary at the top, then the panel in place of the picture.
    assert 'id="known-summary"' in html and "1 of 2 files is known material." in html
    assert html.index('id="known-summary"') < html.index('id="evidence-heading"')
    panel = html.split(f'id="known-{known}"')[1].split("</div>")[0]
    assert "Known material: no need to view" in panel
    assert "Example Industry Bank" in panel and "A1 – prepubescent minor, sex act" in panel
    assert "PDQ" in panel and "distance 6" in panel and "UTC" in panel
    # Nothing of the known file's picture reaches the browser, not even blurred.
    assert f"/staff/evidence/{known}/preview" not in html
    assert f"/staff/evidence/{known}/original" not in html
    assert f'<label for="reason-{known}">' in html and f'id="reason-{known}" name="reason" maxlength="500" required' in html
    # The unknown file behaves as before: a blurred preview and the ordinary reveal.
    assert f'<img class="evidence-thumb" src="/staff/evidence/{unknown}/preview"' in html
    assert f'id="known-{unknown}"' not in html
    # The queue marks the report with known material, and only that one.
    queue = analyst.get("/staff/queue", params={"status": "all"}).text
    rows = {m.group(1): m.group(0) for m in re.finditer(r'/staff/reports/([0-9a-f-]{36})".*?</td>', queue, re.S)}
    assert "known material" in rows[str(filed.report_id)]
    assert "known material" not in rows[str(other.report_id)]
    assert 'id="known-summary"' not in analyst.get(f"/staff/reports/{other.report_id}").text


def test_preview_route_refuses_known_files(mixed: tuple[Filed, Filed], staff_client: StaffFactory) -> None:
    filed, _other = mixed
    known, unknown = filed.files
    analyst = staff_client(Role.analyst)
    refused = analyst.get(f"/staff/evidence/{known}/preview")
    assert refused.status_code == 404 and "known material" in refused.text
    assert refused.headers["content-type"].startswith("text/html")
    shown = analyst.get(f"/staff/evidence/{unknown}/preview")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    assert analyst.get(f"/staff/evidence/{known}/original").status_code == 404


def test_reveal_without_a_reason_is_refused_and_records_nothing(
        mixed: tuple[Filed, Filed], staff_client: StaffFactory, ctx: AppContext) -> None:
    filed, _other = mixed
    known = filed.files[0]
    analyst = staff_client(Role.analyst)
    token = csrf_token(analyst.get(f"/staff/reports/{filed.report_id}").text)
    before = audit_actions(ctx)
    for reason in ("", "   "):
        refused = analyst.post(f"/staff/evidence/{known}/reveal", data={"csrf_token": token, "reason": reason},
                               follow_redirects=False)
        assert refused.status_code == 422
        assert "say why you need to see it" in refused.text and 'role="alert"' in refused.text
        assert "original?grant=" not in refused.text and f"/staff/evidence/{known}/preview" not in refused.text
    assert [e.action for e in custody(ctx, known)] == ["received"]
    assert audit_actions(ctx) == before


def test_reveal_with_a_reason_is_recorded_then_shows_the_file(
        mixed: tuple[Filed, Filed], staff_client: StaffFactory, ctx: AppContext) -> None:
    filed, _other = mixed
    known = filed.files[0]
    analyst = staff_client(Role.analyst)
    token = csrf_token(analyst.get(f"/staff/reports/{filed.report_id}").text)
    answer = analyst.post(f"/staff/evidence/{known}/reveal", data={"csrf_token": token, "reason": REASON},
                          follow_redirects=False)
    assert answer.status_code == 303
    events = custody(ctx, known)
    assert [e.action for e in events] == ["received", "revealed"]
    details = json.loads(events[1].details)
    assert details["reason"] == REASON and details["known_material"] is True
    assert details["banks"] == ["Example Industry Bank"] and details["categories"] == ["A1"]
    with ctx.sessions() as session:
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == "custody.revealed")).scalar_one()
        assert entry.object_id == str(known) and entry.actor == events[1].actor
    # The existing grant flow then shows it: the original, and only with the grant.
    page = analyst.get(answer.headers["location"])
    grant = re.search(rf'/staff/evidence/{known}/original\?grant=([^"]+)"', page.text)
    assert grant, page.text[:2000]
    original = analyst.get(f"/staff/evidence/{known}/original", params={"grant": grant.group(1).replace("&amp;", "&")})
    assert original.status_code == 200 and original.content == filed.pictures[0]
    # An unknown file still opens without a reason, as before, recorded as "viewed".
    unknown = filed.files[1]
    plain = analyst.post(f"/staff/evidence/{unknown}/reveal", data={"csrf_token": token}, follow_redirects=False)
    assert plain.status_code == 303 and [e.action for e in custody(ctx, unknown)] == ["received", "viewed"]


def test_all_known_report_is_referred_without_viewing(
        client: TestClient, ctx: AppContext, staff_client: StaffFactory) -> None:
    police = make_agency(ctx, "Example Ohio Police Unit", ("US-OH",))
    filed = file_report(client, ctx, [21, 22])
    vics = make_bank(ctx, "Example VICS Set", CategoryScheme.vics)
    industry = make_bank(ctx, "Example Industry Bank", CategoryScheme.industry)
    mark_known(ctx, filed, filed.files[0], vics, category="1", kind=HashKind.md5, distance=0)
    mark_known(ctx, filed, filed.files[1], industry, category="B2")
    with ctx.sessions() as session:
        assert matching.report_is_all_known(session, filed.report_id)
    analyst = staff_client(Role.analyst)
    page = analyst.get(f"/staff/reports/{filed.report_id}").text
    assert ("All 2 files are known material: nobody needs to view them. Categories: "
            "B2 – pubescent minor, lascivious exhibition; VICS 1 – Child Abuse Material.") in page
    form = analyst.get(f"/staff/reports/{filed.report_id}/referrals").text
    assert 'id="known-referral"' in form and "this report can be referred without anyone viewing them" in form
    done = refer(analyst, filed.report_id, {police: "Child lives in Ohio"})
    assert done.status_code == 200 and "Referred." in done.text
    assert "All 2 files are known material" in done.text and "referred without viewing." in done.text
    for evidence_id in filed.files:
        events = custody(ctx, evidence_id)
        assert [e.action for e in events] == ["received", "referred"]
        assert json.loads(events[1].details)["viewed"] is False
    with ctx.sessions() as session:
        referred = session.execute(select(CaseEvent).where(CaseEvent.kind == "referred")).scalar_one()
        assert referred.details["files_not_viewed"] == 2
    # The package the agency receives carries the same record.
    package = post(analyst, f"/staff/cases/{referred.referral_id}/package")
    assert package.status_code == 200
    entries = dict(canonzip.decode(package.content))
    unseen = [e for e in json.loads(entries["custody.json"])["evidence_files"] if e["action"] == "referred"]
    assert len(unseen) == 2 and all(e["details"]["viewed"] is False for e in unseen)
    timeline = json.loads(entries["report.json"])["referral"]["timeline"]
    assert timeline[0]["step"] == "referred" and timeline[0]["details"]["files_not_viewed"] == 2


def test_a_revealed_or_unknown_file_is_not_referred_as_unseen(
        mixed: tuple[Filed, Filed], ctx: AppContext, staff_client: StaffFactory) -> None:
    filed, _other = mixed
    known, unknown = filed.files
    police = make_agency(ctx, "Example Ohio Police Unit", ("US-OH",))
    with ctx.sessions() as session:
        assert not matching.report_is_all_known(session, filed.report_id)
    analyst = staff_client(Role.analyst)
    assert 'id="known-referral"' not in analyst.get(f"/staff/reports/{filed.report_id}/referrals").text
    token = csrf_token(analyst.get(f"/staff/reports/{filed.report_id}").text)
    analyst.post(f"/staff/evidence/{known}/reveal", data={"csrf_token": token, "reason": REASON})
    assert refer(analyst, filed.report_id, {police: "Child lives in Ohio"}).status_code == 200
    viewed = {e.evidence_id: json.loads(e.details)["viewed"]
              for e in custody(ctx, known) + custody(ctx, unknown) if e.action == "referred"}
    assert viewed == {known: True, unknown: False}


def test_a_file_without_category_does_not_make_the_report_all_known(
        client: TestClient, ctx: AppContext, staff_client: StaffFactory) -> None:
    filed = file_report(client, ctx, [31])
    mark_known(ctx, filed, filed.files[0], make_bank(ctx, "Uncategorised Bank", CategoryScheme.custom),
               category=None, kind=HashKind.sha256, distance=0)
    with ctx.sessions() as session:
        assert not matching.report_is_all_known(session, filed.report_id)
    page = staff_client(Role.analyst).get(f"/staff/reports/{filed.report_id}").text
    # Still known (no picture sent), but not "nobody needs to view them".
    assert "1 of 1 files is known material." in page and "no category" in page and "SHA256" in page
    assert f"/staff/evidence/{filed.files[0]}/preview" not in page


def test_a_known_partner_file_never_viewed_by_the_partner_still_needs_a_legal_basis(
        esp_client: TestClient, auth: dict[str, str], ctx: AppContext,  # noqa: F811 (fixtures)
        staff_client: StaffFactory) -> None:
    partner_report = submit(esp_client, auth)
    picture = png_bytes(seed=41)
    assert code_of(upload(esp_client, auth, partner_report, picture)) == 0
    assert code_of(esp_client.post("/ispws/finish", headers=auth, data={"id": str(partner_report)}).text) == 0
    with ctx.sessions() as session:
        report_id = session.execute(select(Report.id)).scalar_one()
        evidence_id = session.execute(select(EvidenceFile.id)).scalar_one()
    filed = Filed(report_id, [evidence_id], [picture])
    mark_known(ctx, filed, evidence_id, make_bank(ctx, "Example Industry Bank", CategoryScheme.industry),
               category="A2")
    analyst = staff_client(Role.analyst)
    page = analyst.get(f"/staff/reports/{report_id}").text
    assert "Known material: no need to view" in page and "a legal basis is needed" in page
    token = csrf_token(page)
    refused = analyst.post(f"/staff/evidence/{evidence_id}/reveal", data={"csrf_token": token, "reason": REASON})
    assert refused.status_code == 422 and "Record the legal basis" in refused.text
    assert "revealed" not in [e.action for e in custody(ctx, evidence_id)]
    opened = analyst.post(f"/staff/evidence/{evidence_id}/reveal", follow_redirects=False, data={
        "csrf_token": token, "reason": REASON, "legal_basis": "Warrant 2026-0042"})
    assert opened.status_code == 303
    revealed = [e for e in custody(ctx, evidence_id) if e.action == "revealed"]
    assert len(revealed) == 1
    details = json.loads(revealed[0].details)
    assert details["legal_basis"] == "Warrant 2026-0042" and details["known_material"] is True
