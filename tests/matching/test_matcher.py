"""Matching stored files (and submitted hashes) against the banks: PDQ through the index
with per-bank thresholds, exact kinds by SQL, vPDQ frame by frame; matches are stored with
their custody event and raise the report's priority."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, insert, select, text, update

from tests.conftest import BACKEND
from tests.matching.bank_fixtures import (
    add_entries,
    custody,
    make_bank,
    matches_of,
    reload,
    store_file,
    vpdq_value,
    with_settings,
    worker,
)
from tests.matching.test_perceptual import EDITS, encode, picture, videos
from tipline import clock
from tipline.audit.models import AuditEntry
from tipline.context import AppContext
from tipline.db import transaction
from tipline.matching import imports, matcher, service
from tipline.matching.hashing import format_frames
from tipline.matching.models import BankEntry, HashBank, HashKind, HashMatch, SubmittedHash
from tipline.matching.perceptual import pdq_distance, pdq_from_bytes, vpdq_from_path
from tipline.matching.worker import HashWorker
from tipline.reports.models import Report

__all__ = ["videos", "worker"]  # fixtures, used by name


def pdq_hex(data: bytes) -> str:
    result = pdq_from_bytes(data)
    assert result is not None and result.matchable
    return result.hash_hex


def test_an_image_in_a_bank_matches_with_its_re_encodings_and_others_do_not(
        ctx: AppContext, worker: HashWorker) -> None:
    bank = make_bank(ctx, "Known images")
    originals = {key: picture(*key) for key in (("shapes", 1), ("gradient", 5))}
    entry_ids = dict(zip(originals, add_entries(ctx, bank, [
        (HashKind.pdq, pdq_hex(encode(image)), "A1") for image in originals.values()]),
        strict=True))
    stored = {(key, name): store_file(ctx, edit(image), f"{name}.img")
              for key, image in originals.items() for name, edit in EDITS.items()}
    unrelated = [store_file(ctx, encode(picture(*key)), "other.png")
                 for key in (("noise", 1), ("shapes", 2))]

    assert worker.run_once() == len(stored) + len(unrelated)

    for (key, name), item in stored.items():
        found = matches_of(ctx, item.id)
        assert [(m.entry_id, m.kind, m.category, m.bank_id) for m in found] == [
            (entry_ids[key], HashKind.pdq, "A1", bank)], name
        row = reload(ctx, item)
        assert row.pdq is not None
        assert found[0].distance == pdq_distance(bytes.fromhex(row.pdq),
                                                 bytes.fromhex(pdq_hex(encode(originals[key]))))
        assert found[0].distance <= 31
    for item in unrelated:
        assert matches_of(ctx, item.id) == []
        assert reload(ctx, item).hash_state == "done"


def test_exact_hashes_match_exactly(ctx: AppContext, worker: HashWorker) -> None:
    texts = [f"invented chat log number {n}\n".encode() * 20 for n in range(4)]
    bank = make_bank(ctx, "Exact", default_category="B2")
    md5_id, sha1_id, sha256_id = add_entries(ctx, bank, [
        (HashKind.md5, hashlib.md5(texts[0]).hexdigest(), "A2"),
        (HashKind.sha1, hashlib.sha1(texts[1]).hexdigest(), None),
        (HashKind.sha256, hashlib.sha256(texts[2]).hexdigest(), "B1"),
    ])
    # One bit away from a stored file is no match for an exact kind.
    near = bytearray(hashlib.sha256(texts[3]).digest())
    near[0] ^= 1
    add_entries(ctx, bank, [(HashKind.sha256, near.hex(), "A1")])
    items = [store_file(ctx, text, "chat.txt") for text in texts]

    worker.run_once()

    found = [[(m.entry_id, m.kind, m.distance, m.category) for m in matches_of(ctx, item.id)]
             for item in items]
    assert found == [[(md5_id, HashKind.md5, 0, "A2")],
                     [(sha1_id, HashKind.sha1, 0, "B2")],  # the bank's default category
                     [(sha256_id, HashKind.sha256, 0, "B1")],
                     []]


def test_exact_hashes_are_looked_up_in_the_index(ctx: AppContext) -> None:
    """Every stored file asks the banks for its MD5, SHA-1 and SHA-256: on either database
    that must be a search of the (kind, value) index, never a scan of the entries."""
    bank = make_bank(ctx, "Many exact entries")
    add_entries(ctx, bank, [(HashKind.md5, hashlib.md5(str(n).encode()).hexdigest(), None)
                            for n in range(2000)])
    query = matcher._EXACT_ENTRIES.params(
        values_md5=[hashlib.md5(b"1").hexdigest(), hashlib.md5(b"an invented file").hexdigest()],
        values_sha1=[hashlib.sha1(b"1").hexdigest()], values_sha256=[hashlib.sha256(b"1").hexdigest()])
    with ctx.sessions() as session:
        sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
        if BACKEND == "sqlite":
            plan = [str(row[-1]) for row in session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
            searches = [line for line in plan if "ix_hash_bank_entry_kind_value (kind=? AND value=?)" in line]
            assert len(searches) == 3, plan
            assert not [line for line in plan if line.startswith("SCAN hash_bank_entry")], plan
        else:
            session.execute(text("ANALYZE hash_bank_entry"))
            lines = [row[0] for row in session.execute(text(f"EXPLAIN {sql}"))]
            assert not [line for line in lines if "Seq Scan on hash_bank_entry" in line], lines
            conditions = [line for line in lines if "Index Cond" in line and "value" in line]
            assert len(conditions) == 3 and all("kind" in line for line in conditions), lines


def test_only_enabled_banks_match_and_each_bank_keeps_its_threshold(
        ctx: AppContext, worker: HashWorker) -> None:
    original = picture("noise", 2)
    entry = pdq_hex(encode(original))
    copy = EDITS["resize 25%"](original)
    distance = pdq_distance(bytes.fromhex(entry), bytes.fromhex(pdq_hex(copy)))
    assert distance > 0
    wide, narrow, off = (make_bank(ctx, "Wide", threshold=31),
                         make_bank(ctx, "Narrow", threshold=distance - 1),
                         make_bank(ctx, "Switched off", enabled=False))
    exact_narrow = make_bank(ctx, "Narrow but exact", threshold=distance)
    for bank in (wide, narrow, off, exact_narrow):
        add_entries(ctx, bank, [(HashKind.pdq, entry, "A1")])
    first = store_file(ctx, copy, "copy.png")

    worker.run_once()

    assert sorted(m.bank_id for m in matches_of(ctx, first.id)) == sorted([wide, exact_narrow])
    with transaction(ctx.sessions) as session:  # switched on: new files match it too
        session.execute(update(HashBank).where(HashBank.id == off).values(enabled=True))
        session.execute(update(HashBank).where(HashBank.id == wide).values(enabled=False))
    second = store_file(ctx, copy, "copy again.png")
    worker.run_once()
    assert sorted(m.bank_id for m in matches_of(ctx, second.id)) == sorted([off, exact_narrow])


def test_a_low_quality_hash_does_not_match(ctx: AppContext, worker: HashWorker) -> None:
    flat = encode(Image.new("RGB", (640, 480), (128, 128, 128)))
    result = pdq_from_bytes(flat)
    assert result is not None and result.quality < 50
    bank = make_bank(ctx, "Featureless")
    add_entries(ctx, bank, [(HashKind.pdq, result.hash_hex, "A1")])
    item = store_file(ctx, flat, "grey.png")

    worker.run_once()

    row = reload(ctx, item)
    assert (row.pdq, row.pdq_quality) == (result.hash_hex, result.quality)  # kept, not matched
    assert matches_of(ctx, item.id) == []


def test_a_match_is_in_the_custody_log_and_raises_the_report_priority(
        ctx: AppContext, worker: HashWorker) -> None:
    content = encode(picture("gradient", 0), "JPEG", quality=85)
    bank = make_bank(ctx, "Hotline list")
    add_entries(ctx, bank, [(HashKind.sha256, hashlib.sha256(content).hexdigest(), "A1"),
                            (HashKind.pdq, pdq_hex(content), "A1")])
    item = store_file(ctx, content, "known.jpg")
    with ctx.sessions() as session:
        before = session.get_one(Report, item.report_id)
    assert before.priority_reasons == ["child under 13"]

    worker.run_once()

    events = custody(ctx, item.id)
    assert [action for action, _ in events] == ["received", "hashed", "matched", "matched"]
    assert sorted((d["kind"], d["distance"], d["bank"], d["category"]) for _, d in events[2:]) == [
        ("pdq", 0, "Hotline list", "A1"), ("sha256", 0, "Hotline list", "A1")]
    with ctx.sessions() as session:
        after = session.get_one(Report, item.report_id)
        audit_actions = list(session.execute(select(AuditEntry.action).where(
            AuditEntry.object_id == str(item.report_id))).scalars())
    reason = "known material: A1 in bank Hotline list"
    assert after.priority_reasons == [reason, "child under 13"]  # the other reason is kept
    assert after.priority_score == before.priority_score + 45
    assert after.due_at is not None and before.due_at is not None
    assert after.due_at < before.due_at
    assert audit_actions.count("report.priority") == 1  # one rise, however many matches
    with ctx.sessions() as session:
        summaries = service.matches_for_report(session, item.report_id)
        assert [(m.evidence_id, m.bank_name) for m in summaries] == [(item.id, "Hotline list")] * 2
        assert service.report_is_all_known(session, item.report_id)


def test_the_index_loads_entries_another_process_adds(ctx: AppContext) -> None:
    polling = HashWorker(with_settings(ctx, hash_index_refresh_seconds=0.2), workers=1)
    bank = make_bank(ctx, "Shared")
    polling.start()
    try:
        assert polling.index.ready.wait(30)
        assert len(polling.index) == 0
        value = pdq_hex(encode(picture("shapes", 2)))
        other = create_engine(ctx.settings.resolved_database_url)  # another connection
        with other.begin() as conn:
            conn.execute(insert(BankEntry.__table__).values(  # type: ignore[arg-type]
                bank_id=bank, kind="pdq", value=value, category="B1", label="",
                added_at=clock.now()))
        other.dispose()
        started = time.monotonic()
        while len(polling.index) == 0 and time.monotonic() - started < 10:
            time.sleep(0.05)
        assert len(polling.index) == 1
        assert polling.index.pdq_hits([bytes.fromhex(value)], 0)[0][0][1] == 0
    finally:
        polling.stop()


def test_an_import_in_this_process_is_matchable_at_once(ctx: AppContext, tmp_path: Path) -> None:
    keeper = HashWorker(with_settings(ctx, hash_index_refresh_seconds=600.0), workers=1)
    bank = make_bank(ctx, "Imported")
    keeper.start()
    try:
        assert keeper.index.ready.wait(30)
        value = pdq_hex(encode(picture("gradient", 0)))
        listing = tmp_path / "known.txt"
        listing.write_text(f"{value}\n")
        done = imports.run_import(ctx.sessions, bank_id=bank, path=listing, format="plain",
                                  kind=HashKind.pdq, actor="admin")
        assert done.added == 1
        started = time.monotonic()  # the hook, not the 10-minute poll, loads it
        while len(keeper.index) == 0 and time.monotonic() - started < 5:
            time.sleep(0.02)
        assert len(keeper.index) == 1
    finally:
        keeper.stop()
    assert keeper.entries_added not in imports.on_entries_added


def test_a_video_matches_its_vpdq_entry(ctx: AppContext, worker: HashWorker,
                                        videos: dict[str, Path], tmp_path: Path) -> None:
    import subprocess

    frames = vpdq_from_path(videos["bank"])
    assert frames
    text = format_frames(frames)
    bank = make_bank(ctx, "Videos", default_category="B1")
    add_entries(ctx, bank, [(HashKind.vpdq, vpdq_value(text), None)],
                frames={vpdq_value(text): text})
    copy = tmp_path / "copy.mp4"  # smaller and more compressed, as an upload would be
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(videos["bank"]),
                    "-vf", "scale=320:240", "-crf", "35", "-pix_fmt", "yuv420p", str(copy)],
                   check=True)
    known = store_file(ctx, copy.read_bytes(), "copy.mp4")
    other = store_file(ctx, videos["unrelated"].read_bytes(), "other.mp4")

    worker.run_once()

    found = matches_of(ctx, known.id)
    assert [(m.kind, m.category, m.bank_id) for m in found] == [(HashKind.vpdq, "B1", bank)]
    assert 0 <= found[0].distance <= 20  # the share of the entry's frames not found
    assert matches_of(ctx, other.id) == []


def test_submitted_hashes_are_matched_by_the_rules_files_follow(
        ctx: AppContext, worker: HashWorker) -> None:
    original = picture("shapes", 1)
    bank = make_bank(ctx, "Survivor hashes", default_category="A2")
    md5 = hashlib.md5(b"an invented file").hexdigest()
    pdq_entry, md5_entry = add_entries(ctx, bank, [(HashKind.pdq, pdq_hex(encode(original)), None),
                                                   (HashKind.md5, md5, None)])
    report_id = store_file(ctx, b"covering note\n", "note.txt").report_id
    copy_pdq = pdq_hex(EDITS["jpeg q30"](original))
    with transaction(ctx.sessions) as session:
        now = clock.now()
        hashes = [SubmittedHash(id=uuid.uuid4(), report_id=report_id, kind=kind, value=value,
                                quality=quality, label="", submitted_at=now)
                  for kind, value, quality in ((HashKind.pdq, copy_pdq, 90),
                                               (HashKind.md5, md5.upper(), None),
                                               (HashKind.pdq, copy_pdq, 20))]
        direct = service.match_submitted_hash(session, hashes[0])  # at once, in the caller's transaction
        assert [(m.entry_id, m.submitted_hash_id, m.category) for m in direct] == [
            (pdq_entry, hashes[0].id, "A2")]
        session.add_all(hashes[1:])

    worker.run_once()  # the others wait for the worker

    with ctx.sessions() as session:
        rows = session.execute(select(HashMatch).where(HashMatch.report_id == report_id)).scalars()
        found = sorted((m.entry_id, m.submitted_hash_id) for m in rows)
        waiting = session.execute(select(SubmittedHash).where(
            SubmittedHash.matched_at.is_(None))).scalars().all()
        report = session.get_one(Report, report_id)
    assert found == sorted([(pdq_entry, hashes[0].id), (md5_entry, hashes[1].id)])
    assert waiting == []  # the low-quality one too: looked at, not matched
    assert report.priority_reasons[0] == "known material: A2 in bank Survivor hashes"


@pytest.mark.parametrize("threshold", [40, 64])
def test_a_threshold_above_the_index_range_still_answers(ctx: AppContext, worker: HashWorker,
                                                         threshold: int) -> None:
    bank = make_bank(ctx, f"Very wide {threshold}", threshold=threshold)
    original = picture("gradient", 5)
    add_entries(ctx, bank, [(HashKind.pdq, pdq_hex(encode(original)), "A1")])
    item = store_file(ctx, EDITS["greyscale"](original), "grey.png")
    worker.run_once()
    # The index answers up to 32 bits; a wider bank is asked at 32 (matcher.enabled_thresholds).
    assert [m.bank_id for m in matches_of(ctx, item.id)] == [bank]



def test_a_submitted_hash_that_cannot_be_matched_does_not_hold_up_the_others(
        ctx: AppContext, worker: HashWorker) -> None:
    bank = make_bank(ctx, "Queue")
    md5 = hashlib.md5(b"another invented file").hexdigest()
    (entry,) = add_entries(ctx, bank, [(HashKind.md5, md5, "B1")])
    report_id = store_file(ctx, b"covering note\n", "note.txt").report_id
    with transaction(ctx.sessions) as session:
        broken = SubmittedHash(id=uuid.uuid4(), report_id=report_id, kind=HashKind.pdq,
                               value="not hexadecimal at all", label="",
                               submitted_at=clock.now())
        good = SubmittedHash(id=uuid.uuid4(), report_id=report_id, kind=HashKind.md5, value=md5,
                             label="", submitted_at=clock.now())
        session.add_all([broken, good])

    worker.run_once()

    with ctx.sessions() as session:
        matched = session.execute(select(HashMatch.submitted_hash_id, HashMatch.entry_id)).all()
        waiting = session.execute(select(SubmittedHash).where(
            SubmittedHash.matched_at.is_(None))).scalars().all()
        failed = session.execute(select(AuditEntry.object_id).where(
            AuditEntry.action == "hash.match_failed")).scalars().all()
    assert [tuple(row) for row in matched] == [(good.id, entry)]
    assert waiting == []
    assert failed == [str(broken.id)]
