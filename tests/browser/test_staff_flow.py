"""The whole staff side in a real browser (Debian's Chromium), against one real `tipline
serve`: a report filed on the public site is triaged by an analyst (TOTP sign-in, blurred
evidence, a recorded reveal), referred to the police unit of the child's country, followed
up by that unit's officer to prosecution and an outcome, while the reporter follows it on
the follow-up page in coarse words only, and an officer of another agency sees nothing."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from PIL import Image, ImageChops
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.conftest import Server
from tests.helpers import png_bytes
from tests.smtp_inbox import Inbox, smtp_server
from tests.staff.conftest import PASSWORD, current_code, make_agency, make_user
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.reports.models import Report

pytestmark = pytest.mark.browser

DESCRIPTION = "An account called shadowfox_99 keeps messaging my son and demands money by Friday."
QUESTION = "Did shadowfox_99 ever tell your son which town he lives in?"
ANSWER = "He said he lives near the harbour in Portsmouth."
REVEAL_REASON = "Check that the screenshot shows the demand for money"
ITEM = "Laptop of the account holder, forensic image"


@pytest.fixture(autouse=True)
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A real SMTP server for the agency's notice. Autouse, so that it runs before `server`
    copies the environment for `tipline serve`."""
    with smtp_server(monkeypatch) as received:
        yield received


@dataclass(frozen=True)
class People:
    analyst: uuid.UUID
    officer: uuid.UUID
    stranger: uuid.UUID
    police: uuid.UUID
    elsewhere: uuid.UUID
    emails: dict[str, str]


@pytest.fixture
def people(server: Server, sessions: sessionmaker[Session]) -> People:
    """Two agencies and three staff accounts, written straight into the server's database
    (after it started over it, so nothing is overwritten)."""
    ctx = cast(AppContext, SimpleNamespace(sessions=sessions))
    police = make_agency(ctx, "Example Police Unit", ("GB",), "police")
    elsewhere = make_agency(ctx, "Elsewhere Police Unit", ("FR",), "police")
    emails = {"analyst": "analyst@example.org", "officer": "officer@example.org",
              "stranger": "stranger@example.org"}
    return People(
        analyst=make_user(ctx, Role.analyst, email=emails["analyst"]),
        officer=make_user(ctx, Role.agency_officer, agency_id=police, email=emails["officer"]),
        stranger=make_user(ctx, Role.agency_officer, agency_id=elsewhere, email=emails["stranger"]),
        police=police, elsewhere=elsewhere, emails=emails,
    )


# ---------------------------------------------------------------- helpers


def _click_and_wait(page: Any, selector: str) -> Any:
    with page.expect_navigation() as navigation:
        page.locator(selector).click()
    return navigation.value


def _file_report(page: Any, server: Server, picture: Path) -> tuple[str, str]:
    page.goto(server.url("/report"))
    page.get_by_label("I am a parent or carer").check()
    page.locator("#incident_types-sextortion").check()
    page.locator("#sextortion_demands-money").check()
    page.locator("#sextortion_deadline").fill("Friday evening")
    page.locator("#platform").fill("ExampleChat")
    page.locator("#suspect_usernames").fill("shadowfox_99")
    page.locator("#description").fill(DESCRIPTION)
    page.locator("#child_country").select_option("GB")
    page.locator("#reporter_country").select_option("GB")
    page.locator("#files").set_input_files(str(picture))
    assert _click_and_wait(page, "#send-report").status == 201
    return (page.locator("#reference").inner_text().strip(),
            page.locator("#codename").inner_text().strip())


def _staff_sign_in(page: Any, server: Server, email: str) -> None:
    """Password, then TOTP: the first sign-in shows the secret, from which the code is made."""
    page.goto(server.url("/staff/login"))
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    _click_and_wait(page, "form[action='/staff/login'] button[type=submit]")
    assert page.url == server.url("/staff/2fa")
    secret = page.locator("#totp-secret").inner_text().strip()
    page.locator("#code").fill(current_code(secret))
    answer = _click_and_wait(page, "form[action='/staff/2fa'] button[type=submit]")
    assert answer.status == 200, page.locator("main").inner_text()


def _reporter_status(page: Any, server: Server) -> str:
    page.goto(server.url("/followup/report"))
    status: str = page.locator("#status").inner_text()
    return status


def _image_loaded(page: Any, selector: str) -> bool:
    loaded: bool = page.locator(selector).evaluate("img => img.complete && img.naturalWidth > 0")
    return loaded


def _custody(sessions: sessionmaker[Session], evidence_id: uuid.UUID) -> list[CustodyEvent]:
    with sessions() as session:
        query = select(CustodyEvent).where(CustodyEvent.evidence_id == evidence_id).order_by(CustodyEvent.at)
        return list(session.execute(query).scalars())


def _advance(page: Any, target: str, outcome: str = "") -> Any:
    page.locator("#target").select_option(target)
    if outcome:
        page.locator("#outcome").select_option(outcome)
    return _click_and_wait(page, "#advance")


# ---------------------------------------------------------------- the flow


def test_report_triage_referral_and_follow_up_to_an_outcome(
    server: Server, people: People, sessions: sessionmaker[Session], inbox: Inbox, new_context: Any,
    tmp_path: Path,
) -> None:
    picture = tmp_path / "chat-screenshot.png"
    picture.write_bytes(png_bytes(seed=7))

    # 1. The reporter files a report on the public site and keeps the codename.
    reference, codename = _file_report(new_context().new_page(), server, picture)
    with sessions() as session:
        report_id = session.execute(select(Report.id).where(Report.reference == reference)).scalar_one()
        evidence_id = session.execute(
            select(EvidenceFile.id).where(EvidenceFile.report_id == report_id)).scalar_one()

    # The reporter follows the report from another browser.
    reporter = new_context().new_page()
    reporter.goto(server.url("/followup"))
    reporter.locator("#codename").fill(codename)
    _click_and_wait(reporter, "form[action='/followup'] button[type=submit]")
    assert reporter.url == server.url("/followup/report")
    assert reporter.locator("#status").inner_text() == "Received"

    # 2. The analyst signs in and finds the report in the queue with its reasons.
    analyst = new_context().new_page()
    _staff_sign_in(analyst, server, people.emails["analyst"])
    assert analyst.url == server.url("/staff/queue")
    row = analyst.locator("#queue tbody tr", has_text=reference)
    assert row.count() == 1
    reasons = row.locator("ul.reasons li").all_inner_texts()
    assert "sextortion with a deadline (Friday evening)" in reasons, reasons
    assert "ongoing contact" not in reasons  # frequency was left at "unsure"
    analyst.screenshot(path=str(tmp_path / "queue.png"), full_page=True)

    with analyst.expect_navigation():
        row.get_by_role("link", name=reference).click()
    assert analyst.url == server.url(f"/staff/reports/{report_id}")
    assert analyst.locator("#reporter-sees").inner_text() == "Received"
    assert [r for r in analyst.locator("#priority-reasons li").all_inner_texts() if "sextortion" in r]

    # The evidence shows only as a blurred, greyscale preview; the original needs a reveal.
    thumb = analyst.locator(f"#evidence-{evidence_id} img.evidence-thumb")
    assert thumb.get_attribute("src") == f"/staff/evidence/{evidence_id}/preview"
    assert "revealed" not in (thumb.get_attribute("class") or "")
    assert _image_loaded(analyst, f"#evidence-{evidence_id} img.evidence-thumb")
    preview = analyst.request.get(server.url(f"/staff/evidence/{evidence_id}/preview"))
    assert preview.status == 200
    assert preview.body() != picture.read_bytes()
    red, green, blue = Image.open(io.BytesIO(preview.body())).convert("RGB").split()
    grey = ImageChops.difference(red, green).getbbox() is None and ImageChops.difference(green, blue).getbbox() is None
    assert grey, "the preview is not greyscale"
    assert analyst.request.get(server.url(f"/staff/evidence/{evidence_id}/original")).status == 404
    analyst.screenshot(path=str(tmp_path / "report-blurred.png"), full_page=True)
    assert [e.action for e in _custody(sessions, evidence_id)] == ["received"]

    # The analyst takes the report: the reporter sees it is under review.
    _click_and_wait(analyst, "#claim")
    assert analyst.locator("#report-status").inner_text() == "in_review"
    assert _reporter_status(reporter, server) == "Under review"

    # Revealing the image, with a reason, is a custody event "viewed".
    analyst.locator(f"#reason-{evidence_id}").fill(REVEAL_REASON)
    _click_and_wait(analyst, f"#evidence-{evidence_id} button.reveal")
    revealed = analyst.locator(f"#evidence-{evidence_id} img.evidence-thumb.revealed")
    assert (revealed.get_attribute("src") or "").startswith(f"/staff/evidence/{evidence_id}/original?grant=")
    assert _image_loaded(analyst, f"#evidence-{evidence_id} img.revealed")
    events = _custody(sessions, evidence_id)
    assert [e.action for e in events] == ["received", "viewed"]
    assert events[1].actor == f"staff:{people.analyst}"
    assert json.loads(events[1].details) == {"reason": REVEAL_REASON}

    # The analyst refers it to the police unit of the child's country, which is suggested.
    _click_and_wait(analyst, "#refer-link")
    assert analyst.url == server.url(f"/staff/reports/{report_id}/referrals")
    assert analyst.locator(f"#agency-{people.police}").is_checked()
    assert not analyst.locator(f"#agency-{people.elsewhere}").is_checked()
    assert analyst.locator(f"#reason-{people.police}").input_value()
    _click_and_wait(analyst, "#refer")
    assert analyst.locator("#referral-notice").is_visible()
    assert analyst.locator("#report-status").inner_text() == "referred"
    assert analyst.locator("#referrals tbody tr").count() == 1
    assert _reporter_status(reporter, server) == "Referred to an agency"

    # The unit's officer (only they) gets an e-mail with the reference and a link.
    inbox.wait_for(1)
    recipients, notice = inbox.messages[0]
    assert recipients == [people.emails["officer"]]
    body = notice.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert reference in (notice["Subject"] or "")
    assert "shadowfox" not in body
    link = re.search(r"http://\S+/staff/cases/\S+", body)
    assert link, body

    # 3. The officer of that unit signs in, sees the case and accepts it.
    officer = new_context().new_page()
    _staff_sign_in(officer, server, people.emails["officer"])
    assert officer.url == server.url("/staff/cases")
    cases = officer.locator("#cases tbody tr")
    assert cases.count() == 1
    assert reference in cases.inner_text()
    assert "Example Police Unit" in cases.inner_text()
    case_url = server.url(cases.get_by_role("link", name=reference).get_attribute("href") or "")
    assert link.group(0) == case_url
    officer.goto(link.group(0))
    referral_id = case_url.rsplit("/", 1)[1]
    assert officer.locator("#referral-status").inner_text() == "pending"
    _click_and_wait(officer, "#accept")
    assert officer.locator("#case-notice").is_visible()
    assert officer.locator("#referral-status").inner_text() == "accepted"
    assert officer.locator("#case-status").inner_text() == "investigating"

    # An officer of another agency sees nothing of it, whatever the address.
    stranger = new_context().new_page()
    _staff_sign_in(stranger, server, people.emails["stranger"])
    assert stranger.url == server.url("/staff/cases")
    assert stranger.locator("#cases tbody tr").inner_text().strip() == "No cases."
    assert reference not in stranger.locator("main").inner_text()
    for path in (f"/staff/reports/{report_id}", f"/staff/cases/{referral_id}",
                 f"/staff/evidence/{evidence_id}/preview"):
        assert stranger.goto(server.url(path)).status == 404, path
        assert reference not in stranger.content()

    # The officer asks the reporter a question from the report page.
    _click_and_wait(officer, "#open-report")
    assert officer.url == server.url(f"/staff/reports/{report_id}")
    assert officer.locator("#claim").count() == 0
    officer.locator("#question").fill(QUESTION)
    _click_and_wait(officer, "#send-question")
    assert officer.locator("#action-notice").is_visible()

    # 4. The reporter sees the coarse status and the question, and answers it.
    assert _reporter_status(reporter, server) == "Referred to an agency"
    assert reporter.locator("article.message", has_text=QUESTION).count() == 1
    reporter.locator("#body").fill(ANSWER)
    _click_and_wait(reporter, "#send-reply")
    assert reporter.locator("#notice").inner_text() == "Thank you: your message was added."
    assert ANSWER in reporter.locator("article.message.reporter").last.inner_text()

    # 5. The officer reads the answer, records an item, and takes the case to its outcome.
    officer.goto(server.url(f"/staff/reports/{report_id}"))
    assert ANSWER in officer.locator("article.message.reporter").last.inner_text()
    assert officer.locator("article.message", has_text=QUESTION).count() == 1
    officer.goto(case_url)
    digest = hashlib.sha256(b"forensic image of the laptop").hexdigest()
    officer.locator("#description").fill(ITEM)
    officer.locator("#acquired_where").fill("Home address of the account holder, Portsmouth")
    officer.locator("#acquired_how").fill("Search warrant 2024/117")
    officer.locator("#sha256").fill(digest)
    _click_and_wait(officer, "#record-item")
    assert officer.locator("#case-notice").is_visible()
    item = officer.locator("article.collected-item")
    assert item.count() == 1
    assert ITEM in item.inner_text()
    assert digest in item.inner_text()
    assert [t.split(" · ")[1] for t in item.locator("ol.custody li").all_inner_texts()] == ["collected"]
    officer.screenshot(path=str(tmp_path / "case.png"), full_page=True)

    assert _advance(officer, "evidence_collected").status == 200
    assert officer.locator("#case-status").inner_text() == "evidence_collected"
    assert _advance(officer, "prosecution").status == 200
    assert officer.locator("#case-status").inner_text() == "prosecution"
    assert _reporter_status(reporter, server) == "Referred to an agency"

    # Closing needs an outcome.
    assert _advance(officer, "closed").status == 422
    assert officer.locator("#outcome-error").is_visible()
    assert officer.locator("#case-status").inner_text() == "prosecution"
    assert _advance(officer, "closed", "charged").status == 200
    assert officer.locator("#case-status").inner_text() == "closed"
    assert officer.locator("#case-outcome").inner_text() == "Charged"
    assert officer.locator("#reporter-sees").inner_text() == "Closed"
    steps = officer.locator("#timeline .step").evaluate_all("els => els.map((e) => e.dataset.kind)")
    assert steps[:4] == ["referred", "notified", "accepted", "status"], steps
    assert "item_recorded" in steps
    officer.screenshot(path=str(tmp_path / "case-closed.png"), full_page=True)

    # 6. The reporter sees "Closed", and nothing of the outcome or the agency.
    assert _reporter_status(reporter, server) == "Closed"
    seen = reporter.locator("main").inner_text().casefold()
    for word in ("charged", "prosecution", "example police unit", "outcome"):
        assert word not in seen, word
    assert reporter.locator("article.message").count() == 2  # the question and the answer
    reporter.screenshot(path=str(tmp_path / "followup-closed.png"), full_page=True)
