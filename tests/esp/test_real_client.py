"""The public ncmec-cybertip 0.1.1 client (Python >= 3.13, in its own venv) against a live
server on loopback: every call must get the answer the client expects, and the finished
report reaches the analysts' queue."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import environment_for
from tests.esp.conftest import make_partner
from tests.helpers import png_bytes
from tests.serverproc import ServerFailed, ServerProcess
from tests.staff.conftest import make_user, sign_in
from tipline import crypto
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.esp.models import EspReport, EspReportState
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import BlobStore
from tipline.reports.models import Report
from tipline.settings import Settings

CLIENT = "ncmec-cybertip==0.1.1"
VENV = Path(os.environ.get("TIPLINE_CT_VENV", "/tmp/tipline-ncmec-cybertip-0.1.1"))
ROOT = Path(__file__).resolve().parents[2]


def _client_python() -> Path:
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


def test_the_real_client_end_to_end(live_server: str, settings: Settings, sessions: sessionmaker[Session],
                                    tmp_path: Path, client: TestClient, ctx: AppContext) -> None:
    python = _client_python()
    partner = make_partner(sessions, "Example Video Co")
    image = png_bytes(seed=11, size=(64, 48))
    png = tmp_path / "synthetic.png"
    png.write_bytes(image)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    run = subprocess.run(
        [python, Path(__file__).with_name("client_script.py"), f"{live_server}/ispws",
         partner.username, partner.password, png],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)

    assert out["status"] == [0, f"Remote User : {partner.username}, Remote Ip : 127.0.0.1"]
    (first_id, first_hash), (second_id, second_hash) = out["uploads"]
    assert first_hash == hashlib.md5(image).hexdigest()
    assert second_hash == hashlib.md5(b"synthetic text").hexdigest()
    assert out["fileinfo"] == [0, out["full"]]
    assert out["finish"] == [out["full"], [first_id, second_id]]
    assert out["retract"] == 0
    assert out["retract_finished"] == [5102, "Report already finished"]
    assert out["wrong_password"] == [401, "Unauthorized"]

    with sessions() as session:
        full = session.execute(select(EspReport).where(EspReport.report_id == out["full"])).scalar_one()
        minimal = session.execute(select(EspReport).where(EspReport.report_id == out["minimal"])).scalar_one()
        assert full.state == EspReportState.finished and minimal.state == EspReportState.retracted
        report = session.get(Report, full.tipline_report_id)
        assert report is not None and report.status.value == "received"
        assert "partner escalated: Synthetic escalation" in report.priority_reasons
        assert "sam_s" in report.suspect["usernames"]
        files = evidence.list_for_report(session, report.id)
        assert sorted(f.sha256 for f in files) == sorted(
            [hashlib.sha256(image).hexdigest(), hashlib.sha256(b"synthetic text").hexdigest()])
        vault = evidence.verify_vault(session, BlobStore(settings.vault_dir), crypto.load_keys(settings.keys_dir))
        assert vault.healthy and vault.checked == 2 and not vault.orphans
        reference = report.reference

    # An analyst, signed in on an all-surface app over the same settings, sees it in the queue.
    make_user(ctx, Role.analyst, email="analyst-esp@example.org")
    signed_in = sign_in(client, "analyst-esp@example.org")
    assert signed_in.status_code == 200 or str(signed_in.url).endswith("/staff/cases"), signed_in.text[:500]
    queue = client.get("/staff/queue")
    assert queue.status_code == 200 and reference in queue.text
