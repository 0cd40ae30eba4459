"""Retro-matching: entries imported after files were stored find those files, from the
stored hashes alone, with progress kept on the import."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tests.matching.bank_fixtures import (
    add_entries,
    custody,
    finished_import,
    make_bank,
    matches_of,
    store_file,
    worker,
)
from tests.matching.test_perceptual import EDITS, encode, picture
from tipline import clock
from tipline.context import AppContext
from tipline.db import transaction
from tipline.matching import rematch
from tipline.matching.models import (
    BankEntry,
    BankImport,
    HashJob,
    HashKind,
    HashMatch,
    JobState,
    SubmittedHash,
)
from tipline.matching.perceptual import pdq_from_bytes
from tipline.matching.worker import HashWorker
from tipline.reports.models import Report

__all__ = ["worker"]  # the fixture, used by name


def pdq_hex(data: bytes) -> str:
    result = pdq_from_bytes(data)
    assert result is not None
    return result.hash_hex


def test_a_later_import_finds_files_stored_before_it(ctx: AppContext, worker: HashWorker) -> None:
    original = picture("noise", 1)
    copy = store_file(ctx, EDITS["jpeg q30"](original), "copy.jpg")
    text = b"an invented message log\n" * 30
    log = store_file(ctx, text, "log.txt")
    bystanders = [store_file(ctx, encode(picture("shapes", n)), "x.png") for n in (1, 2)]
    assert worker.run_once() == 4
    for item in (copy, log, *bystanders):
        assert matches_of(ctx, item.id) == []
    # The vault is gone: re-matching must not need to decrypt anything.
    for item in (copy, log, *bystanders):
        ctx.blobs.delete(item.blob_name)

    bank = make_bank(ctx, "Grown later")
    import_id, (pdq_entry, md5_entry) = finished_import(ctx, bank, [
        (HashKind.pdq, pdq_hex(encode(original)), "B1"),
        (HashKind.md5, hashlib.md5(text).hexdigest(), "A2")])

    assert worker.run_once() == 0

    assert [(m.entry_id, m.kind) for m in matches_of(ctx, copy.id)] == [(pdq_entry, HashKind.pdq)]
    assert [(m.entry_id, m.kind) for m in matches_of(ctx, log.id)] == [(md5_entry, HashKind.md5)]
    for item in bystanders:
        assert matches_of(ctx, item.id) == []
    assert custody(ctx, copy.id)[-1][0] == "matched"
    with ctx.sessions() as session:
        done = session.get_one(BankImport, import_id)
        job = session.execute(select(HashJob).where(HashJob.import_id == import_id)).scalar_one()
        report = session.get_one(Report, copy.report_id)
    assert (done.rematch_state, done.rematch_total, done.rematch_done) == (JobState.done, 4, 4)
    assert (job.kind, job.state, job.attempts) == ("rematch", JobState.done, 1)
    assert report.priority_reasons[0] == "known material: B1 in bank Grown later"
    assert worker.run_once() == 0  # nothing is queued twice
    with ctx.sessions() as session:
        assert len(session.execute(select(HashJob)).scalars().all()) == 1


def test_progress_is_committed_batch_by_batch(ctx: AppContext, worker: HashWorker) -> None:
    texts = [f"invented note {n}\n".encode() * 10 for n in range(5)]
    items = [store_file(ctx, text, "note.txt") for text in texts]
    worker.run_once()
    bank = make_bank(ctx, "Notes")
    import_id, _ids = finished_import(ctx, bank, [
        (HashKind.sha1, hashlib.sha1(texts[n]).hexdigest(), "A1") for n in (0, 3)])
    with transaction(ctx.sessions) as session:
        rematch.queue_finished_imports(session)
        job = rematch.claim_job(session, stale_before=clock.now())
        assert job is not None
        job_id = job.id
    seen: list[tuple[int, int]] = []

    @contextlib.contextmanager
    def observed() -> Iterator[Session]:
        # Each of the job's transactions, then what another connection sees after it.
        with transaction(ctx.sessions) as session:
            yield session
        with ctx.sessions() as other:
            item = other.get_one(BankImport, import_id)
            seen.append((item.rematch_done, item.rematch_total))

    made = rematch.run_job(observed, worker.index, job_id, import_id, batch=2)

    assert made == 2
    # Seen from outside while it ran: the total, then 2 and 4 of 5 done, then all.
    progress = [done for done, total in seen if total == 5]
    assert progress[:4] == [0, 2, 4, 5] and set(progress[4:]) <= {5}
    assert seen[-1] == (5, 5)
    assert [bool(matches_of(ctx, item.id)) for item in items] == [True, False, False, True, False]


def test_pairs_already_matched_are_not_matched_again(ctx: AppContext, worker: HashWorker) -> None:
    content = encode(picture("gradient", 0))
    bank = make_bank(ctx, "First")
    (first_entry,) = add_entries(ctx, bank, [(HashKind.pdq, pdq_hex(content), "A1")])
    item = store_file(ctx, content, "a.png")
    worker.run_once()
    assert [m.entry_id for m in matches_of(ctx, item.id)] == [first_entry]

    other = make_bank(ctx, "Second")
    _import, (second_entry,) = finished_import(ctx, other, [
        (HashKind.sha256, hashlib.sha256(content).hexdigest(), "A2")])
    worker.run_once()
    worker.run_once()

    assert sorted(m.entry_id for m in matches_of(ctx, item.id)) == [first_entry, second_entry]
    assert [a for a, _ in custody(ctx, item.id)].count("matched") == 2
    with ctx.sessions() as session:
        report = session.get_one(Report, item.report_id)
    # The priority rose once, for the first match.
    assert [r for r in report.priority_reasons if r.startswith("known material")] == [
        "known material: A1 in bank First"]


def test_submitted_hashes_are_re_matched_too(ctx: AppContext, worker: HashWorker) -> None:
    report_id = store_file(ctx, b"covering note\n", "note.txt").report_id
    value = hashlib.sha256(b"an invented picture").hexdigest()
    with transaction(ctx.sessions) as session:
        submitted = SubmittedHash(id=uuid.uuid4(), report_id=report_id, kind=HashKind.sha256,
                                  value=value, label="", submitted_at=clock.now())
        session.add(submitted)
    worker.run_once()
    bank = make_bank(ctx, "Later")
    finished_import(ctx, bank, [(HashKind.sha256, value, "A1")])
    worker.run_once()
    with ctx.sessions() as session:
        found = session.execute(select(HashJob.state)).scalars().all()
        matched = session.execute(select(HashMatch.submitted_hash_id)).scalars().all()
    assert found == [JobState.done]
    assert matched == [submitted.id]


def test_a_failing_job_is_retried_then_given_up(ctx: AppContext, worker: HashWorker) -> None:
    bank = make_bank(ctx, "Broken")
    import_id, _ids = finished_import(ctx, bank, [(HashKind.md5, "1" * 32, None)])
    with transaction(ctx.sessions) as session:
        rematch.queue_finished_imports(session)
        job = rematch.claim_job(session, stale_before=clock.now())
        assert job is not None
        job_id = job.id
    for attempt in (1, 2, 3):
        with transaction(ctx.sessions) as session:
            rematch.fail_job(session, job_id, "RuntimeError: disk on fire", max_attempts=3)
            item = session.get_one(BankImport, import_id)
            state = item.rematch_state
        assert state == (JobState.failed if attempt == 3 else JobState.queued)
        if attempt < 3:
            with transaction(ctx.sessions) as session:
                again = rematch.claim_job(session, stale_before=clock.now())
                assert again is not None and again.id == job_id and again.attempts == attempt + 1
    with transaction(ctx.sessions) as session:
        assert rematch.claim_job(session, stale_before=clock.now()) is None


def test_an_import_committed_out_of_id_order_is_loaded_before_re_matching(
        ctx: AppContext, worker: HashWorker) -> None:
    # PostgreSQL numbers entries when they are inserted, not when they commit: a long import
    # can commit its lower ids after the index has loaded a higher one. Simulated here by
    # giving the import ids below an entry the index already holds.
    original = picture("gradient", 5)
    bank = make_bank(ctx, "Slow import")
    table = BankEntry.__table__
    with transaction(ctx.sessions) as session:
        session.execute(insert(table).values(  # type: ignore[arg-type]
            id=1000, bank_id=bank, kind="pdq", value=pdq_hex(encode(picture("noise", 2))),
            category="A1", label="", added_at=clock.now()))
    worker.run_once()
    late = pdq_hex(encode(original))
    import_id, _none = finished_import(ctx, bank, [])
    with transaction(ctx.sessions) as session:
        session.execute(insert(table).values(  # type: ignore[arg-type]
            id=10, bank_id=bank, kind="pdq", value=late, category="B2", label="",
            added_at=clock.now(), import_id=import_id))
        session.get_one(BankImport, import_id).added = 1
    worker.index.refresh(lambda: transaction(ctx.sessions))  # what the index thread does
    assert worker.index.pdq_hits([bytes.fromhex(late)], 0) == [[]]  # skipped by the watermark

    worker.run_once()  # the import's rematch job loads it

    assert worker.index.pdq_hits([bytes.fromhex(late)], 0) == [[(10, 0)]]
    item = store_file(ctx, EDITS["greyscale"](original), "grey.png")
    worker.run_once()
    assert [(m.entry_id, m.category) for m in matches_of(ctx, item.id)] == [(10, "B2")]
