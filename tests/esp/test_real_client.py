"""The public ncmec-cybertip 0.1.1 client (Python >= 3.13, in its own venv) against a live
server on loopback: the fullest report the client can write, every call answered as the
client expects, and the finished report mapped right and in the analysts' queue."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import environment_for
from tests.esp.conftest import GOLDEN, make_partner
from tests.helpers import png_bytes
from tests.serverproc import ServerFailed, ServerProcess
from tests.staff.conftest import make_user, sign_in
from tipline import crypto
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.esp import service
from tipline.esp.models import EspFile, EspReport, EspReportState
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import BlobStore
from tipline.evidence.models import CustodyEvent
from tipline.reports.enums import Source
from tipline.reports.models import Report
from tipline.settings import Settings
from tipline.triage.models import ReportIdentifier

CLIENT = "ncmec-cybertip==0.1.1"
VENV = Path(os.environ.get("TIPLINE_CT_VENV", "/tmp/tipline-ncmec-cybertip-0.1.1"))
ROOT = Path(__file__).resolve().parents[2]


def client_python() -> Path:
    python = VENV / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import ncmec_cybertip"],
                                          capture_output=True, check=False).returncode == 0:
        return python
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("pyenv is not available, so there is no Python 3.13 for the client")
    base = Path(root) / "versions" / "3.13.0" / "bin" / "python3"
    if not base.exists():
        pytest.skip(f"no Python 3.13 at {base}")
    subprocess.run([base, "-m", "venv", "--clear", VENV], check=True, capture_output=True)
    pip = subprocess.run([VENV / "bin" / "pip", "install", "-q", CLIENT], capture_output=True, text=True,
                         check=False)
    if pip.returncode != 0:
        pytest.skip(f"pip could not install {CLIENT}: {pip.stderr[-500:]}")
    return python


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """A real `tipline serve --surface partner` on this test's data directory."""
    try:
        server = ServerProcess(environment_for(settings), tmp_path / "server.log", surface="partner")
    except ServerFailed as exc:
        pytest.fail(str(exc))
    with server:
        yield server.url


SUSPECT = {
    "usernames": ["sam_s", "user-1001", "Sam S", "S. Suspect", "192.0.2.44", "8.8.8.8", "2001:db8::44",
                  "sammy_alt", "acct-sammy", "198.51.100.22", "sbill_alt", "acct-sbill", "198.51.100.24"],
    "profile_links": ["https://social.example.com/u/sam_s", "https://social.example.com/id/1001",
                      "https://other.example.org/sammy", "https://other.example.org/sbill"],
    "emails": ["sam.suspect@example.com", "sam.work@example.org", "sammy.alt@example.com",
               "sbill.alt@example.com"],
    "phones": ["+1 202-555-0120", "+1 202-555-0121", "+1 202-555-0122", "+1 202-555-0124"],
}
OTHER_PARTIES = [
    {"role": "intended_recipient", "screen_names": ["ivy_r", "user-2002", "Ivy R"],
     "emails": ["ivy.recipient@example.com", "ivy.work@example.org"],
     "phones": ["+1 202-555-0150", "+1 202-555-0151"], "profile_urls": ["https://social.example.com/u/ivy_r"]},
    {"role": "intended_recipient", "screen_names": ["ian_r2"], "emails": [], "phones": [],
     "profile_urls": ["https://social.example.com/u/ian_r2"]},
    {"role": "victim", "screen_names": ["val_v", "user-3003", "Val V", "valparent_alt", "acct-valparent"],
     "emails": ["val.victim@example.com", "val.work@example.org", "valparent.alt@example.com"],
     "phones": ["+1 202-555-0160", "+1 202-555-0161", "+1 202-555-0162"],
     "profile_urls": ["https://social.example.com/u/val_v", "https://other.example.org/valparent"]},
    {"role": "victim", "screen_names": ["wes_w"], "emails": [], "phones": [], "profile_urls": []},
]
REASONS = {"partner escalated: Synthetic escalation: ongoing contact", "child under 13",
           "partner annotation: sextortion", "partner annotation: solicitation of sexual images",
           "partner annotation: minor-to-minor interaction", "partner annotation: sadistic online exploitation"}
FILE_ANNOTATIONS = {"animeDrawingVirtualHentai", "potentialMeme", "viral", "possibleSelfProduction",
                    "physicalHarm", "violenceGore", "bestiality", "liveStreaming", "infant", "generativeAi"}


def _golden_json(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text("utf-8"))


def _without(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in keys}


def test_the_real_client_end_to_end(live_server: str, settings: Settings, sessions: sessionmaker[Session],
                                    tmp_path: Path, client: TestClient, ctx: AppContext) -> None:
    """The fullest report the client can write (client_script.fullest: every section and
    field, every internetDetails variant, two files with full fileDetails), through every
    call, then what Tipline made of it."""
    python = client_python()
    partner = make_partner(sessions, "Example Video Co")
    images = [png_bytes(seed=11, size=(64, 48)), png_bytes(seed=12, size=(48, 64))]
    pngs = [tmp_path / "synthetic-1.png", tmp_path / "synthetic-2.png"]
    for path, image in zip(pngs, images, strict=True):
        path.write_bytes(image)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    run = subprocess.run(
        [python, Path(__file__).with_name("client_script.py"), "run", f"{live_server}/ispws",
         partner.username, partner.password, *pngs],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)

    # Every call got the answer the client expects; errors only where they are due.
    rid, small = out["full"], out["minimal"]
    assert out["status"] == [0, f"Remote User : {partner.username}, Remote Ip : 127.0.0.1"]
    (r1, first_id, first_md5), (r2, second_id, second_md5) = out["uploads"]
    assert r1 == r2 == rid
    assert [first_md5, second_md5] == [hashlib.md5(image).hexdigest() for image in images]
    assert out["fileinfo"] == [[0, rid, first_id], [0, rid, second_id]]
    assert out["fileinfo_unknown_file"] == [5002, "File does not exist", small]
    assert out["finish"] == [0, rid, [first_id, second_id]]
    assert out["upload_after_finish"] == [5102, "Report already finished", rid]
    assert out["retract"] == [0, small]
    assert out["finish_retracted"] == [5101, None, small]  # a reportDoneResponse: no description
    assert out["retract_finished"] == [5102, "Report already finished", rid]
    assert out["wrong_password"] == [401, "Unauthorized", None]

    # `finish` answers after the commit: everything below is there already.
    with sessions() as session:
        full = session.execute(select(EspReport).where(EspReport.report_id == rid)).scalar_one()
        minimal = session.execute(select(EspReport).where(EspReport.report_id == small)).scalar_one()
        assert full.state == EspReportState.finished and minimal.state == EspReportState.retracted
        assert minimal.document == {}
        # The document the server kept is the one test_golden reads from the client's bytes.
        assert full.document == _golden_json("client_submit_fullest.json")
        report = session.get(Report, full.tipline_report_id)
        assert report is not None and report.status.value == "received" and report.source == Source.partner

        assert report.incident_types == ["csam", "sextortion", "image_pressure"]
        assert report.priority_reasons[0] == "partner escalated: Synthetic escalation: ongoing contact"
        assert set(report.priority_reasons) == REASONS  # spam and informational add nothing
        assert report.priority_score == 40 + 30 + 4 * 10
        assert report.platform == "ExampleApp"
        assert report.urls == ["https://bad.example.com/gallery/1", "https://mirror.example.org/g/1"]
        assert report.happened_on is not None and report.happened_on.isoformat() == "2025-10-14"
        assert report.child_age_band.value == "9_12" and report.child_country == "US"
        assert report.reporter_country == "US" and report.anonymous is False
        assert "Batched report: viral or potential meme." in report.description
        assert "Additional information: Report-level note (synthetic)" in report.description

        suspect = report.suspect
        assert {k: suspect[k] for k in SUSPECT} == SUSPECT
        assert "name: Sam Suspect" in suspect["details"] and "device IMEI: 490154203237518" in suspect["details"]
        assert suspect["other_parties"] == OTHER_PARTIES
        for party in suspect["other_parties"]:  # never mixed into the suspect's lists
            assert not set(party["screen_names"]) & set(suspect["usernames"])
            assert not set(party["emails"]) & set(suspect["emails"])
            assert not set(party["phones"]) & set(suspect["phones"])
            assert not set(party["profile_urls"]) & set(suspect["profile_links"])
        assert not {"203.0.113.50", "203.0.113.60", "203.0.113.62"} & set(suspect["usernames"])
        # The documentation address 192.0.2.44 comes first and gives no hint; 8.8.8.8 does.
        hint = suspect["ip_country_hint"]
        assert hint["country"] == "US" and hint["ip"] == "8.8.8.8" and hint["authoritative"] is False
        indexed = set(session.execute(select(ReportIdentifier.kind, ReportIdentifier.value).where(
            ReportIdentifier.report_id == report.id)).all())
        assert {("username", "exampleapp:sam_s"), ("ip", "8.8.8.8"), ("email", "sam.suspect@example.com"),
                ("username", "exampleapp:ivy_r"), ("email", "val.victim@example.com")} <= indexed

        # The files: in the vault, verified, with the MD5 the client was given.
        files = evidence.list_for_report(session, report.id)
        assert sorted((f.md5, f.sha256) for f in files) == sorted(
            (hashlib.md5(image).hexdigest(), hashlib.sha256(image).hexdigest()) for image in images)
        vault = evidence.verify_vault(session, BlobStore(settings.vault_dir), crypto.load_keys(settings.keys_dir))
        assert vault.healthy and vault.checked == 2 and not vault.orphans

        # fileDetails: stored as sent (the golden's document, with this run's ids and hashes),
        # and the flags that decide who may open the file.
        rows = {r.file_id: r for r in session.execute(select(EspFile)).scalars()}
        first, second = rows[first_id], rows[second_id]
        assert first.details is not None and second.details is not None
        for row, golden, image in ((first, "client_fileinfo_fullest.json", images[0]),
                                   (second, "client_fileinfo_supplemental.json", images[1])):
            assert row.md5 == hashlib.md5(image).hexdigest() and row.evidence_id is not None
            assert row.details is not None
            ignored = ("reportId", "fileId", "originalFileHash")
            assert _without(row.details, *ignored) == _without(_golden_json(golden), *ignored)
            sent = {h["@hashType"]: h["value"] for h in row.details["originalFileHash"]}
            assert all(hashlib.new(kind.lower(), image).hexdigest() == value for kind, value in sent.items())
        assert (first.viewed_by_esp, first.exif_viewed_by_esp, first.publicly_available) == (True, True, False)
        assert (second.viewed_by_esp, second.exif_viewed_by_esp, second.publicly_available) == (False, False, True)
        assert first.needs_legal_basis is False and second.needs_legal_basis is True
        assert set(first.details["fileAnnotations"]) == FILE_ANNOTATIONS
        assert set(second.details["fileAnnotations"]) == FILE_ANNOTATIONS - {"potentialMeme"}
        assert first.details["industryClassification"] == "A2"
        assert first.details["details"][0]["nameValuePair"][0] == {"name": "Make", "value": "ExampleCam",
                                                                   "@type": "EXIF"}
        assert service.evidence_needing_legal_basis(session, [first.evidence_id, second.evidence_id]) == {
            second.evidence_id}
        described = {e.evidence_id: json.loads(e.details) for e in session.execute(
            select(CustodyEvent).where(CustodyEvent.action == "described")).scalars()}
        assert described[first.evidence_id]["relevance"] == "Reported"
        assert described[first.evidence_id]["industry_classification"] == "A2"
        assert described[second.evidence_id]["relevance"] == "Supplemental Reported"
        assert described[second.evidence_id]["needs_legal_basis"] is True
        reference = report.reference

    # An analyst, signed in on an all-surface app over the same settings, sees it in the
    # queue, with the partner's escalation as a reason.
    make_user(ctx, Role.analyst, email="analyst-esp@example.org")
    signed_in = sign_in(client, "analyst-esp@example.org")
    assert signed_in.status_code == 200 or str(signed_in.url).endswith("/staff/cases"), signed_in.text[:500]
    queue = client.get("/staff/queue")
    assert queue.status_code == 200 and reference in queue.text
    assert "partner escalated: Synthetic escalation: ongoing contact" in queue.text
