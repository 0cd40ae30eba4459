"""The encrypted evidence vault: ciphertext on disk, exact plaintext back, tamper detected."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.conftest import environment_for
from tests.helpers import png_bytes, report_json
from tipline import crypto
from tipline.cli.main import cli
from tipline.db import transaction
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import BlobStore
from tipline.evidence.models import EvidenceFile
from tipline.intake.service import submit_report
from tipline.reports.enums import Source
from tipline.reports.schemas import ReportCreate


def store_file(ctx, content: bytes, name: str = "shot.png") -> EvidenceFile:  # type: ignore[no-untyped-def]
    writer = ctx.blobs.writer(ctx.keys, original_name=name, max_bytes=50_000_000,
                              allowed_types=ctx.settings.allowed_types)
    for start in range(0, len(content), 7000):  # uneven pieces, as a network delivers them
        writer.write(content[start:start + 7000])
    blob = writer.finish()
    receipt = submit_report(ctx, ReportCreate.model_validate(report_json()), [blob],
                            source=Source.public_api)
    with ctx.sessions() as session:
        return session.execute(
            select(EvidenceFile).where(EvidenceFile.report_id == receipt.report_id)
        ).scalar_one()


def run_cli(settings, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), env=environment_for(settings), catch_exceptions=False)


@pytest.mark.parametrize("size", [100, 65_535, 65_536, 65_537, 300_000])
def test_blob_is_ciphertext_and_decrypts_to_the_original(ctx, size: int) -> None:  # type: ignore[no-untyped-def]
    # Chunk boundaries are where framing bugs hide: sizes around one 64 KiB chunk.
    noise = png_bytes(seed=size, noise=True)
    content = (noise * (size // len(noise) + 1))[:size]
    item = store_file(ctx, content)
    on_disk = ctx.blobs.path_for(item.blob_name).read_bytes()
    assert content not in on_disk
    assert content[:64] not in on_disk
    plain = b"".join(evidence.read_plaintext(ctx.blobs, ctx.keys, item))
    assert plain == content
    assert item.sha256 == hashlib.sha256(content).hexdigest()
    assert item.size == len(content)
    # Nothing but ciphertext anywhere under the data directory.
    for path in ctx.settings.data_dir.rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm"):
            assert content[:64] not in path.read_bytes(), path


def test_vault_verify_passes_then_detects_one_changed_byte(ctx, settings) -> None:  # type: ignore[no-untyped-def]
    item = store_file(ctx, png_bytes(seed=5))
    store_file(ctx, png_bytes(seed=6))
    good = run_cli(settings, "vault", "verify", "--json")
    assert good.exit_code == 0, good.output
    assert json.loads(good.output)["ok"] == 2

    path = ctx.blobs.path_for(item.blob_name)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    bad = run_cli(settings, "vault", "verify")
    assert bad.exit_code == 1
    assert f"FAILED {item.id}" in bad.output
    assert "does not verify" in bad.output


def test_truncated_or_extended_blob_fails(ctx) -> None:  # type: ignore[no-untyped-def]
    content = png_bytes(seed=8, noise=True) * 2
    item = store_file(ctx, content)
    path = ctx.blobs.path_for(item.blob_name)
    whole = path.read_bytes()
    # Drop the last chunk entirely: earlier chunks are not marked final, so this is caught.
    path.write_bytes(whole[: 8 + crypto.CHUNK_BYTES + crypto.TAG_BYTES])
    with pytest.raises(crypto.DecryptionError):
        b"".join(evidence.read_plaintext(ctx.blobs, ctx.keys, item))
    path.write_bytes(whole + b"\x00" * 40)
    with pytest.raises(crypto.DecryptionError):
        b"".join(evidence.read_plaintext(ctx.blobs, ctx.keys, item))


def test_wrong_master_key_cannot_read(ctx) -> None:  # type: ignore[no-untyped-def]
    item = store_file(ctx, png_bytes(seed=2))
    other = crypto.Keys(master=b"\x01" * 32, pepper=b"\x02" * 32)
    with pytest.raises(crypto.DecryptionError):
        b"".join(evidence.read_plaintext(ctx.blobs, other, item))


def test_orphans_are_named_and_removed_when_old(ctx, settings) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    store_file(ctx, png_bytes(seed=1))
    writer = ctx.blobs.writer(ctx.keys, original_name="x.png", max_bytes=10**6,
                              allowed_types=ctx.settings.allowed_types)
    writer.write(png_bytes(seed=11))
    orphan = writer.finish()  # on disk, but its transaction never happened
    result = run_cli(settings, "vault", "verify", "--json")
    assert json.loads(result.output)["orphans"] == [orphan.name]
    young = run_cli(settings, "vault", "verify", "--remove-orphans", "--json")
    assert json.loads(young.output)["removed"] == 0  # may belong to an upload still committing
    old = time.time() - 3600
    os.utime(orphan.path, (old, old))
    removed = run_cli(settings, "vault", "verify", "--remove-orphans", "--json")
    assert json.loads(removed.output)["removed"] == 1
    assert not orphan.path.exists()
    assert json.loads(run_cli(settings, "vault", "verify", "--json").output)["orphans"] == []


def test_missing_blob_is_reported(ctx, settings) -> None:  # type: ignore[no-untyped-def]
    item = store_file(ctx, png_bytes(seed=12))
    ctx.blobs.delete(item.blob_name)
    result = run_cli(settings, "vault", "verify")
    assert result.exit_code == 1
    assert "blob file is missing" in result.output


def test_custody_received_commits_with_the_row(ctx) -> None:  # type: ignore[no-untyped-def]
    item = store_file(ctx, png_bytes(seed=13))
    with transaction(ctx.sessions) as session:
        events = session.execute(
            select(evidence.CustodyEvent).where(evidence.CustodyEvent.evidence_id == item.id)
        ).scalars().all()
    assert [(e.action, e.sha256) for e in events] == [("received", item.sha256)]


def test_decrypt_stream_rejects_foreign_data() -> None:
    with pytest.raises(crypto.DecryptionError):
        list(crypto.decrypt_stream(b"\x00" * 32, io.BytesIO(b"not a blob at all")))


def test_blob_store_sweeps_half_written_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = BlobStore(tmp_path)
    store.ensure()
    import os
    import time

    old = store.tmp / "old.part"
    old.write_bytes(b"partial ciphertext")
    past = time.time() - 3600
    os.utime(old, (past, past))
    young = store.tmp / "young.part"
    young.write_bytes(b"an upload still arriving in another process")
    assert store.sweep_tmp() == 1
    assert [p.name for p in store.tmp.iterdir()] == ["young.part"]


