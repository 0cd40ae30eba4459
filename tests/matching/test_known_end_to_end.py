"""Known material end to end, on a real server with its hashing worker: a bank imported
with the CLI, then a report filed on the public site and one filed through the partner API
by the real ncmec-cybertip client, each carrying a re-encoded copy of a banked picture.
Both arrive matched, labelled with the bank's category, prioritised, and unviewed; the
custody log shows the hashing and the match; the analyst sees the known-material panel.

Pictures are generated (shapes over a gradient); the bank holds only their hashes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import environment_for
from tests.esp.conftest import make_partner
from tests.esp.test_real_client import client_python
from tests.helpers import report_json
from tests.serverproc import TIPLINE, ServerFailed, ServerProcess
from tests.staff.conftest import make_user, sign_in
from tests.synthetic_images import draw_shapes
from tipline.accounts.permissions import Role
from tipline.app import create_app
from tipline.esp.models import EspReport
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.matching.models import HashMatch
from tipline.matching.perceptual import pdq_from_bytes
from tipline.reports.models import Report
from tipline.settings import Settings

BANK = "Hotline known images"


def picture(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size[0], dtype=np.uint8)
    base = Image.fromarray(np.stack([np.tile(ramp, (size[1], 1))] * 3, axis=-1))
    return draw_shapes(rng, base, count=14, alpha=230)


def encoded(image: Image.Image, form: str, **options: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format=form, **options)
    return out.getvalue()


@pytest.fixture
def hashing_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"hash_workers": 1, "hash_poll_seconds": 0.2})


@pytest.fixture
def server(hashing_settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    try:
        process = ServerProcess(environment_for(hashing_settings), tmp_path / "server.log", surface="all")
    except ServerFailed as exc:
        pytest.fail(str(exc))
    with process:
        yield process


def cli(settings: Settings, *args: str) -> str:
    done = subprocess.run([TIPLINE, *args], env=environment_for(settings), capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def wait_for_hashing(sessions: sessionmaker[Session], count: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            states = list(session.execute(select(EvidenceFile.hash_state)).scalars())
        if len(states) >= count and all(state in ("done", "none", "failed") for state in states):
            return
        time.sleep(0.2)
    pytest.fail(f"files were not hashed within {timeout} s: {states}")


def custody(session: Session, evidence_id: uuid.UUID) -> list[tuple[str, str]]:
    return [(row.action, row.details) for row in session.execute(
        select(CustodyEvent).where(CustodyEvent.evidence_id == evidence_id)
        .order_by(CustodyEvent.at)).scalars()]


def test_banked_pictures_arrive_labelled_prioritised_and_unviewed(
        server: ServerProcess, hashing_settings: Settings, sessions: sessionmaker[Session],
        tmp_path: Path) -> None:
    known, unrelated = picture(seed=101), picture(seed=202)
    original = encoded(known, "JPEG", quality=92)
    result = pdq_from_bytes(original)
    assert result is not None and result.matchable
    bank_file = tmp_path / "bank.csv"
    bank_file.write_text(f"pdq,category,label\n{result.hash_hex},A1,synthetic series 7\n")
    cli(hashing_settings, "banks", "create", BANK, "--scheme", "industry", "--source", "test hotline")
    assert "1 added" in cli(hashing_settings, "banks", "import", BANK, str(bank_file)).replace(",", "")

    # The public site: a re-encoding at JPEG quality 30 of the banked picture.
    public = httpx.post(f"{server.url}/api/v1/reports", timeout=30, files=[
        ("report", (None, json.dumps(report_json()), "application/json")),
        ("files", ("screenshot.jpg", encoded(known, "JPEG", quality=30), "image/jpeg"))])
    assert public.status_code == 201, public.text
    reference = public.json()["reference"]

    # The partner API, with the real client: a quarter-size PNG of it, and an unrelated one.
    partner = make_partner(sessions, "Example Video Co")
    pngs = [tmp_path / "known-small.png", tmp_path / "unrelated.png"]
    pngs[0].write_bytes(encoded(known.resize((240, 180)), "PNG"))
    pngs[1].write_bytes(encoded(unrelated, "PNG"))
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    run = subprocess.run([client_python(), Path(__file__).parents[1] / "esp" / "client_script.py", "run",
                          f"{server.url}/ispws", partner.username, partner.password, *pngs],
                         capture_output=True, text=True, timeout=180, env=env, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    full_id = json.loads(run.stdout)["full"]

    wait_for_hashing(sessions, count=3)
    with sessions() as session:
        public_report = session.execute(select(Report).where(Report.reference == reference)).scalar_one()
        partner_report = session.execute(select(Report).join(
            EspReport, EspReport.tipline_report_id == Report.id).where(EspReport.report_id == full_id)).scalar_one()
        for report in (public_report, partner_report):
            matches = list(session.execute(select(HashMatch).where(HashMatch.report_id == report.id)).scalars())
            assert [(m.category, m.kind.value) for m in matches] == [("A1", "pdq")], report.reference
            assert matches[0].distance <= 31
            assert f"known material: A1 in bank {BANK}" in report.priority_reasons
            files = list(session.execute(select(EvidenceFile).where(EvidenceFile.report_id == report.id)
                                         .order_by(EvidenceFile.received_at)).scalars())
            matched = {m.evidence_id for m in matches}
            for item in files:
                actions = [action for action, _ in custody(session, item.id)]
                assert item.hash_state == "done" and item.sha1 and item.pdq
                assert "hashed" in actions and not {"viewed", "revealed"} & set(actions)
                assert ("matched" in actions) == (item.id in matched)
            match_details = [json.loads(d) for a, d in custody(session, matches[0].evidence_id) if a == "matched"]
            assert match_details[0]["bank"] == BANK and match_details[0]["category"] == "A1"
        # The partner's unrelated file stays unknown.
        assert len(list(session.execute(select(EvidenceFile).where(
            EvidenceFile.report_id == partner_report.id)).scalars())) == 2
        public_id = public_report.id

    # The analyst sees the panel in place of the picture.
    staff_app = create_app(hashing_settings.model_copy(update={"hash_workers": 0}), "staff")
    with TestClient(staff_app, base_url="http://testserver") as staff:
        ctx = staff.app.state.ctx  # type: ignore[attr-defined]
        email = f"analyst-{uuid.uuid4().hex[:6]}@example.org"
        make_user(ctx, Role.analyst, email=email)
        sign_in(staff, email)
        page = staff.get(f"/staff/reports/{public_id}")
        assert page.status_code == 200
        assert "Known material: no need to view" in page.text and "A1" in page.text
        assert "/preview" not in page.text
