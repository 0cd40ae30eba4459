"""Crash safety: SIGKILL the real server in the middle of a burst of uploads, restart it on
the same data directory, and check that every acknowledged report survived whole, that the
vault verifies, and that a blob whose transaction never committed is named as an orphan
(and removed once it is old enough)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import environment_for
from tests.helpers import png_bytes, report_json
from tests.serverproc import TIPLINE, ServerFailed, ServerProcess
from tipline.evidence.models import EvidenceFile
from tipline.reports.models import Report
from tipline.settings import Settings

pytestmark = pytest.mark.slow

SUBMISSIONS = 60  # the burst never gets this far: the server dies first
REPORTERS = 6
KILL_AFTER = 12  # receipts that must have arrived before the kill
ORPHAN_GRACE_SECONDS = 15 * 60  # tipline.cli.vault.ORPHAN_GRACE_SECONDS


class Server(ServerProcess):
    """The server under test, on this test's data directory."""

    def __init__(self, settings: Settings, log: Path) -> None:
        try:
            super().__init__(environment_for(settings), log)
        except ServerFailed as exc:
            pytest.fail(str(exc))


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "server.log"


@pytest.fixture
def first_server(settings: Settings, server_log: Path) -> Iterator[Server]:
    server = Server(settings, server_log)
    yield server
    server.stop()


@dataclass
class Burst:
    """What the reporters saw: receipts (reference -> SHA-256 sent) and failures."""

    images: list[bytes]
    url: str
    acknowledged: dict[str, str] = field(default_factory=dict)
    in_flight_failures: list[str] = field(default_factory=list)
    connect_failures: int = 0
    other: list[str] = field(default_factory=list)
    in_flight: int = 0
    in_flight_at_kill: int = -1
    enough: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_index: int = 0

    def take(self) -> int | None:
        with self.lock:
            if self.next_index >= len(self.images):
                return None
            self.next_index += 1
            return self.next_index - 1

    def reporter(self) -> None:
        with httpx.Client(base_url=self.url, timeout=20) as client:
            while (index := self.take()) is not None:
                if not self._send(client, index):
                    return

    def _send(self, client: httpx.Client, index: int) -> bool:
        image = self.images[index]
        files = [("report", (None, json.dumps(report_json(platform=f"Burst{index}")), "application/json")),
                 ("files", (f"shot-{index}.png", image, "image/png"))]
        with self.lock:
            self.in_flight += 1
        try:
            response = client.post("/api/v1/reports", files=files)
        except httpx.ConnectError:
            with self.lock:
                self.connect_failures += 1
            return False
        except httpx.TransportError as exc:  # the connection died under the request
            with self.lock:
                self.in_flight_failures.append(f"{index}: {type(exc).__name__}")
            return False
        finally:
            with self.lock:
                self.in_flight -= 1
        if response.status_code != 201:
            with self.lock:
                self.other.append(f"{index}: {response.status_code} {response.text[:200]}")
            return True
        with self.lock:
            self.acknowledged[response.json()["reference"]] = hashlib.sha256(image).hexdigest()
            if len(self.acknowledged) >= KILL_AFTER:
                self.enough.set()
        return True


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TIPLINE, *args], env=environment_for(settings), capture_output=True,
                          text=True, timeout=60, check=False)


def vault_verify(settings: Settings, *extra: str) -> dict[str, object]:
    done = run_cli(settings, "vault", "verify", "--json", "--no-progress", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    assert result["failures"] == []
    return result


def blob_files(settings: Settings) -> dict[str, Path]:
    root = settings.vault_dir / "blobs"
    return {path.name: path for path in root.glob("*/*") if path.is_file()}


def test_sigkill_mid_burst_loses_nothing_acknowledged(
    settings: Settings, first_server: Server, server_log: Path,
    sessions: sessionmaker[Session],
) -> None:
    images = [png_bytes(seed=i, size=(96, 64)) for i in range(SUBMISSIONS)]
    sent = {hashlib.sha256(image).hexdigest() for image in images}
    assert len(sent) == SUBMISSIONS, "every image must be different"
    burst = Burst(images=images, url=first_server.url)

    threads = [threading.Thread(target=burst.reporter, daemon=True) for _ in range(REPORTERS)]
    for thread in threads:
        thread.start()
    assert burst.enough.wait(timeout=20), (
        f"only {len(burst.acknowledged)} receipts before the kill, other answers: {burst.other}\n"
        + server_log.read_text()[-4000:])
    with burst.lock:
        burst.in_flight_at_kill = burst.in_flight
    first_server.kill()
    for thread in threads:
        thread.join(timeout=25)
    assert not any(thread.is_alive() for thread in threads)

    # The kill really landed mid-burst: requests were on the wire, and not everything was sent.
    assert burst.other == [], server_log.read_text()[-4000:]
    assert burst.in_flight_at_kill > 0
    assert burst.in_flight_failures or burst.connect_failures, "no request failed"
    assert len(burst.acknowledged) < SUBMISSIONS

    restarted = Server(settings, server_log)
    try:
        # Half-written blobs of the killed server stay until they are old: they could be
        # uploads still arriving in another process that shares the vault.
        leftovers = list((settings.vault_dir / "tmp").glob("*.part"))
        after = httpx.post(f"{restarted.url}/api/v1/reports", timeout=20, files=[
            ("report", (None, json.dumps(report_json()), "application/json")),
            ("files", ("after.png", png_bytes(seed=10_000, size=(96, 64)), "image/png"))])
        assert after.status_code == 201, after.text
    finally:
        restarted.stop()

    with sessions() as session:
        reports = {r.reference: r for r in session.execute(select(Report)).scalars()}
        evidence = list(session.execute(select(EvidenceFile)).scalars())
    by_report: dict[object, list[EvidenceFile]] = {}
    for item in evidence:
        by_report.setdefault(item.report_id, []).append(item)

    # Every acknowledged reference is there with exactly the file that was sent.
    for reference, sha256 in burst.acknowledged.items():
        assert reference in reports, f"acknowledged {reference} was lost"
        files = by_report.get(reports[reference].id, [])
        assert [f.sha256 for f in files] == [sha256], reference
    # Reports that committed without their answer reaching the client are still whole.
    for reference, report in reports.items():
        files = by_report.get(report.id, [])
        assert len(files) == 1, f"{reference} has {len(files)} evidence files"
    assert {f.sha256 for f in evidence} - {png_sha(10_000)} <= sent

    shown = run_cli(settings, "reports", "show", next(iter(burst.acknowledged)), "--json")
    assert shown.returncode == 0, shown.stderr
    assert [e["sha256"] for e in json.loads(shown.stdout)["evidence"]] == [
        burst.acknowledged[next(iter(burst.acknowledged))]]

    # The vault: every row's blob decrypts to its digests; a blob without a row is named.
    verified = vault_verify(settings)
    assert verified["checked"] == len(evidence) == verified["ok"]
    on_disk = blob_files(settings)
    unreferenced = set(on_disk) - {f.blob_name for f in evidence}
    assert set(verified["orphans"]) == unreferenced  # type: ignore[arg-type]

    # Young orphans are kept (their upload may still be committing); old ones are removed.
    kept = vault_verify(settings, "--remove-orphans")
    assert kept["removed"] == 0
    assert set(blob_files(settings)) == set(on_disk)
    old = time.time() - ORPHAN_GRACE_SECONDS - 60
    for name in unreferenced:
        os.utime(on_disk[name], (old, old))
    for part in leftovers:
        os.utime(part, (old, old))
    removed = vault_verify(settings, "--remove-orphans")
    assert removed["removed"] == len(unreferenced) + len(leftovers)
    assert set(blob_files(settings)) == {f.blob_name for f in evidence}
    assert list((settings.vault_dir / "tmp").glob("*.part")) == []
    assert vault_verify(settings)["orphans"] == []


def png_sha(seed: int) -> str:
    return hashlib.sha256(png_bytes(seed=seed, size=(96, 64))).hexdigest()
