"""Evidence the agency collects, and the signed referral package, verified offline."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import stat
import uuid
import zipfile

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.cases.conftest import World, post, refer
from tests.helpers import png_bytes
from tipline import crypto
from tipline.accounts.permissions import Role
from tipline.cases import canonzip
from tipline.cases.models import ItemCustodyEvent, Referral
from tipline.cases.package import verify_package
from tipline.cli.package import package as package_cli
from tipline.evidence.models import CustodyEvent

DIGEST = hashlib.sha256(b"forensic image of a seized phone").hexdigest()


@pytest.fixture
def case(staff_client, ctx, world: World):  # type: ignore[no-untyped-def]
    """A referral the police accepted, with one collected item; returns (officer, case path)."""
    refer(staff_client(Role.analyst), world.report_id, {world.police: "Child lives in Ohio"})
    officer = staff_client(Role.agency_officer, agency_id=world.police)
    with ctx.sessions() as session:
        referral_id = session.execute(select(Referral.id)).scalar_one()
    path = f"/staff/cases/{referral_id}"
    post(officer, f"{path}/accept")
    recorded = post(officer, f"{path}/items", description="Phone of the suspect",
                    acquired_where="Suspect's home, Columbus", acquired_how="Search warrant 22-114",
                    sha256=DIGEST.upper(), collected_at="2024-05-02T10:30")
    assert recorded.status_code == 200 and "Item recorded" in recorded.text
    return officer, path


def test_an_item_is_recorded_with_its_chain_of_custody(case, ctx) -> None:  # type: ignore[no-untyped-def]
    officer, path = case
    page = officer.get(path)
    assert "Phone of the suspect" in page.text and DIGEST in page.text
    assert "Search warrant 22-114" in page.text and "2024-05-02 10:30" in page.text
    bad = post(officer, f"{path}/items", description="USB stick", acquired_where="Desk",
               acquired_how="Hand-over", sha256="not-a-digest")
    assert bad.status_code == 422 and "64 hexadecimal characters" in bad.text
    future = post(officer, f"{path}/items", description="USB stick", acquired_where="Desk",
                  acquired_how="Hand-over", sha256=DIGEST, collected_at="2999-01-01T00:00")
    assert future.status_code == 422 and "cannot be in the future" in future.text
    with ctx.sessions() as session:
        item_id = session.execute(select(ItemCustodyEvent.item_id)).scalar_one()
    moved = post(officer, f"{path}/items/{item_id}/transfer", to="Forensic lab, Columbus", reason="imaging")
    assert moved.status_code == 200 and "Forensic lab, Columbus" in moved.text
    assert post(officer, f"{path}/items/{uuid.uuid4()}/transfer", to="x").status_code == 404
    with ctx.sessions() as session:
        actions = [e.action for e in session.execute(
            select(ItemCustodyEvent).order_by(ItemCustodyEvent.at)).scalars()]
    assert actions == ["collected", "transferred"]


def export(officer, path: str) -> bytes:  # type: ignore[no-untyped-def]
    response = post(officer, f"{path}/package")
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    return response.content


def test_the_package_holds_everything_and_verifies(case, ctx, settings) -> None:  # type: ignore[no-untyped-def]
    officer, path = case
    data = export(officer, path)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        report = json.loads(archive.read("report.json"))
        custody = json.loads(archive.read("custody.json"))
        manifest = json.loads(archive.read("manifest.json"))
        evidence_name = next(n for n in names if n.startswith("evidence/"))
        evidence_bytes = archive.read(evidence_name)
        summary = archive.read("summary.txt").decode()
    assert {"manifest.json", "manifest.sig", "summary.txt", "report.json",
            "collected_items.json", "custody.json"} <= set(names)
    assert evidence_bytes == png_bytes(seed=3)  # decrypted, exactly what the reporter sent
    assert report["report"]["platform"] == "PixelPlay"
    assert "Phone of the suspect" in summary
    assert {f["path"] for f in manifest["files"]} == set(names) - {"manifest.json", "manifest.sig"}
    assert [e["action"] for e in custody["evidence_files"]] == ["received", "referred", "exported"]
    assert [e["action"] for e in custody["collected_items"]] == ["collected", "exported"]
    with ctx.sessions() as session:
        exported = session.execute(select(CustodyEvent).where(CustodyEvent.action == "exported")).scalars().all()
    assert len(exported) == 1

    result = verify_package(data)
    assert result.ok, result.failures
    key_file = settings.keys_dir / crypto.SIGNING_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = crypto.signing_public_key(key_file.read_bytes())
    assert manifest["signature"]["fingerprint"] == crypto.key_fingerprint(public)
    # The case page shows the same fingerprint, and serves the key for pinning.
    assert crypto.key_fingerprint(public) in officer.get(path).text
    assert base64.b64decode(officer.get("/staff/cases/signing-key").text) == public


def test_any_changed_byte_fails_verification(case) -> None:  # type: ignore[no-untyped-def]
    officer, path = case
    data = export(officer, path)
    manifest_at = data.index(b'"format"')
    evidence_at = data.index(b"\x89PNG")
    positions = set(range(120)) | set(range(len(data) - 700, len(data)))  # headers, directory, end
    positions |= set(range(manifest_at - 40, manifest_at + 200)) | set(range(evidence_at, evidence_at + 100))
    positions |= set(random.Random(7).sample(range(len(data)), 400)) | set(range(0, len(data), 997))
    for position in sorted(positions):
        for delta in (1, 0x80):
            changed = bytearray(data)
            changed[position] = (changed[position] + delta) % 256
            assert not verify_package(bytes(changed)).ok, f"byte {position} changed, still verified"
    assert verify_package(data[:-1]).ok is False
    assert verify_package(data + b"\x00").ok is False


def test_a_package_re_signed_with_another_key_fails_against_the_pinned_key(case, tmp_path, settings) -> None:  # type: ignore[no-untyped-def]
    officer, path = case
    entries = canonzip.decode(export(officer, path))
    other = crypto.load_or_create_signing_key(tmp_path / "other")
    manifest = json.loads(dict(entries)["manifest.json"])
    manifest["signature"]["public_key"] = base64.b64encode(crypto.signing_public_key(other)).decode()
    manifest["signature"]["fingerprint"] = crypto.key_fingerprint(crypto.signing_public_key(other))
    new_manifest = json.dumps(manifest).encode()
    forged = canonzip.encode([("manifest.json", new_manifest),
                              ("manifest.sig", base64.b64encode(crypto.sign_detached(other, new_manifest))),
                              *[(n, d) for n, d in entries if not n.startswith("manifest.")]])
    assert verify_package(forged).ok  # self-consistent...
    ours = crypto.signing_public_key((settings.keys_dir / crypto.SIGNING_KEY_FILE).read_bytes())
    pinned = verify_package(forged, pinned_key=ours)  # ...but not signed by us
    assert not pinned.ok and any("not by the given key" in f for f in pinned.failures)


def test_cli_verify_prints_what_it_checked_and_fails_cleanly(case, tmp_path, settings) -> None:  # type: ignore[no-untyped-def]
    officer, path = case
    data = export(officer, path)
    good = tmp_path / "package.zip"
    good.write_bytes(data)
    key = tmp_path / "key.pub"
    key.write_text(officer.get("/staff/cases/signing-key").text)
    runner = CliRunner()
    ok = runner.invoke(package_cli, ["verify", str(good), "--public-key", str(key)])
    assert ok.exit_code == 0, ok.output
    assert "VERIFIED" in ok.output and "FAILED" not in ok.output
    assert "report.json: SHA-256" in ok.output and "signature: Ed25519" in ok.output

    body = data.index(b"\x89PNG") + 50
    for position in (body, data.index(b'"format"') + 3, len(data) - 10, 2):
        broken = bytearray(data)
        broken[position] ^= 0xFF
        bad = tmp_path / f"bad-{position}.zip"
        bad.write_bytes(bytes(broken))
        result = runner.invoke(package_cli, ["verify", str(bad)])
        assert result.exit_code == 1, result.output
        assert "NOT VERIFIED" in result.output and "FAILED" in result.output
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"this is not a zip file at all")
    result = runner.invoke(package_cli, ["verify", str(garbage)])
    assert result.exit_code == 1 and "not a readable ZIP file" in result.output
