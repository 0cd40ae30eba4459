"""The hashing worker: stored files are hashed off the request path, in child processes,
from the vault's ciphertext; failures are retried, alarms recorded, stale claims reclaimed."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.matching.bank_fixtures import (
    custody,
    reload,
    store_file,
    with_settings,
    worker,
)
from tests.matching.test_perceptual import _png_header_only, encode, picture, videos
from tipline import clock
from tipline.app import create_app
from tipline.context import AppContext
from tipline.db import transaction
from tipline.evidence.models import EvidenceFile
from tipline.matching import service
from tipline.matching import worker as worker_module
from tipline.matching.hashing import parse_frames
from tipline.matching.models import HashJob, JobState
from tipline.matching.perceptual import pdq_from_bytes
from tipline.matching.worker import MAX_ATTEMPTS, HashWorker
from tipline.settings import Settings

__all__ = ["videos", "worker"]  # fixtures, used by name


def test_a_stored_image_is_hashed_by_the_worker(ctx: AppContext, worker: HashWorker) -> None:
    content = encode(picture("shapes", 1), "JPEG", quality=90)
    stored = store_file(ctx, content, "holiday.jpg")
    assert stored.hash_state == "pending" and stored.sha1 is None

    assert worker.run_once() == 1

    row = reload(ctx, stored)
    expected = pdq_from_bytes(content)
    assert expected is not None
    assert row.hash_state == "done"
    assert row.sha1 == hashlib.sha1(content).hexdigest()
    assert (row.pdq, row.pdq_quality) == (expected.hash_hex, expected.quality)
    assert row.hashed_at is not None and row.vpdq_frames is None
    events = custody(ctx, row.id)
    assert [action for action, _ in events] == ["received", "hashed"]
    details = events[1][1]
    assert details["hashes"] == ["md5", "sha1", "sha256", "pdq"]
    assert details["pdq_quality"] == expected.quality
    assert details["sha1"] == row.sha1
    assert worker.run_once() == 0  # nothing is hashed twice


def test_other_files_get_their_digests_only(ctx: AppContext, worker: HashWorker) -> None:
    text = store_file(ctx, b"chat log: meet at the usual place\n" * 50, "chat.txt")
    broken = store_file(ctx, b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, "broken.png")
    bombs = [store_file(ctx, _png_header_only(side, side), "bomb.png") for side in (10_000, 100_000)]
    assert worker.run_once() == 4

    row = reload(ctx, text)
    assert row.media_type == "text/plain"
    assert row.hash_state == "none"
    assert row.sha1 == hashlib.sha1(b"chat log: meet at the usual place\n" * 50).hexdigest()
    assert row.pdq is None
    assert custody(ctx, row.id)[-1] == ("hashed", {"hashes": ["md5", "sha1", "sha256"],
                                                   "sha1": row.sha1})
    damaged = reload(ctx, broken)
    assert damaged.media_type == "image/png"
    assert damaged.hash_state == "done" and damaged.pdq is None and damaged.sha1
    assert custody(ctx, damaged.id)[-1][1]["note"] == "not an image we can decode"
    for bomb in bombs:  # refused before decoding, in the child as in the request path
        assert reload(ctx, bomb).pdq is None
        assert custody(ctx, bomb.id)[-1][1]["note"] == "too many pixels to decode"


def test_a_changed_blob_raises_a_custody_alarm(ctx: AppContext, worker: HashWorker) -> None:
    tampered = store_file(ctx, encode(picture("noise", 1)), "a.png")
    path = ctx.blobs.path_for(tampered.blob_name)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    # A row whose recorded SHA-256 no longer matches the blob it names.
    swapped = store_file(ctx, encode(picture("noise", 2)), "b.png")
    with transaction(ctx.sessions) as session:
        session.execute(update(EvidenceFile).where(EvidenceFile.id == swapped.id)
                        .values(sha256="0" * 64))

    assert worker.run_once() == 2

    for row_id, problem in ((tampered.id, "does not decrypt"), (swapped.id, "differs")):
        with ctx.sessions() as session:
            row = session.get_one(EvidenceFile, row_id)
        assert row.hash_state == "failed"
        assert row.pdq is None and row.sha1 is None  # nothing from content we cannot trust
        action, details = custody(ctx, row_id)[-1]
        assert action == "integrity_alarm"
        assert problem in details["problem"]


def test_a_file_left_half_hashed_by_a_dead_worker_is_hashed_again(
        ctx: AppContext, worker: HashWorker) -> None:
    stored = store_file(ctx, encode(picture("gradient", 0)))
    an_hour_ago = clock.now() - timedelta(hours=1)
    with transaction(ctx.sessions) as session:  # what a worker that crashed leaves behind
        session.execute(update(EvidenceFile).where(EvidenceFile.id == stored.id)
                        .values(hash_state="hashing", hashed_at=an_hour_ago))
    recent = store_file(ctx, encode(picture("gradient", 5)))
    with transaction(ctx.sessions) as session:  # one another worker is busy with right now
        session.execute(update(EvidenceFile).where(EvidenceFile.id == recent.id)
                        .values(hash_state="hashing", hashed_at=clock.now()))

    assert worker.run_once() == 1

    row = reload(ctx, stored)
    assert row.hash_state == "done" and row.pdq is not None
    assert reload(ctx, recent).hash_state == "hashing"  # not taken from its live worker
    with ctx.sessions() as session:
        job = session.execute(select(HashJob).where(HashJob.evidence_id == stored.id)).scalar_one()
    assert (job.kind, job.attempts, job.state) == ("file", 1, JobState.done)
    assert "did not finish" in job.error


def test_a_file_that_keeps_failing_is_marked_failed(ctx: AppContext, worker: HashWorker) -> None:
    stored = store_file(ctx, encode(picture("shapes", 2)))
    with transaction(ctx.sessions) as session:
        session.execute(update(EvidenceFile).where(EvidenceFile.id == stored.id)
                        .values(hash_state="hashing", hashed_at=clock.now() - timedelta(hours=1)))
        session.add(HashJob(kind="file", evidence_id=stored.id, state=JobState.queued,
                            attempts=MAX_ATTEMPTS - 1, created_at=clock.now(), error="earlier"))

    assert worker.run_once() == 0

    assert reload(ctx, stored).hash_state == "failed"
    action, details = custody(ctx, stored.id)[-1]
    assert action == "hash_failed"
    assert details["attempts"] == MAX_ATTEMPTS
    with ctx.sessions() as session:
        progress = service.hashing_progress(session)
    assert (progress.failed, progress.pending, progress.done) == (1, 0, 0)


def test_the_running_worker_hashes_new_files_within_seconds(ctx: AppContext) -> None:
    running = HashWorker(with_settings(ctx, hash_poll_seconds=60.0), workers=1)
    running.start()
    threads = list(running._threads)
    try:
        assert running.index.ready.wait(30)
        stored = store_file(ctx, encode(picture("noise", 2), "JPEG", quality=80))
        started = time.monotonic()
        worker_module.wake()  # what intake calls after its commit; the poll is a minute
        while reload(ctx, stored).hash_state == "pending" and time.monotonic() - started < 30:
            time.sleep(0.05)
        while reload(ctx, stored).hash_state == "hashing" and time.monotonic() - started < 30:
            time.sleep(0.05)
        assert reload(ctx, stored).hash_state == "done"
        assert time.monotonic() - started < 15
    finally:
        running.stop()
    assert threads and not any(thread.is_alive() for thread in threads)


def test_a_video_gets_its_vpdq(ctx: AppContext, worker: HashWorker,
                              videos: dict[str, Path]) -> None:
    stored = store_file(ctx, videos["bank"].read_bytes(), "clip.mp4")
    assert stored.media_type == "video/mp4"
    assert worker.run_once() == 1
    row = reload(ctx, stored)
    assert row.hash_state == "done" and row.pdq is None and row.vpdq_frames
    frames = parse_frames(row.vpdq_frames)
    assert [f.frame_number for f in frames] == [0, 10, 20, 30, 40, 50]
    assert custody(ctx, row.id)[-1][1]["vpdq_frames"] == 6



def test_the_server_runs_the_worker_unless_told_not_to(settings: Settings) -> None:
    for workers in (1, 0):
        app = create_app(settings.model_copy(update={"hash_workers": workers}), "public")
        with TestClient(app):
            app_ctx: AppContext = app.state.ctx
            stored = store_file(app_ctx, encode(picture("gradient", 0), "JPEG", quality=75))
            worker_module.wake()
            started = time.monotonic()
            patience = 8.0 if workers else 1.5
            while reload(app_ctx, stored).hash_state != "done" and time.monotonic() - started < patience:
                time.sleep(0.05)
            assert reload(app_ctx, stored).hash_state == ("done" if workers else "pending")
        assert not [t for t in threading.enumerate() if t.name.startswith("tipline-hashing")]


def test_a_hashing_process_that_dies_is_replaced(ctx: AppContext, worker: HashWorker) -> None:
    store_file(ctx, encode(picture("shapes", 2)))
    assert worker.run_once() == 1  # the pool is up
    pool = worker._pool
    assert pool is not None
    for process in list(pool._processes.values()):  # what the OOM killer would do
        os.kill(process.pid, signal.SIGKILL)
        process.join()
    stored = store_file(ctx, encode(picture("noise", 1)))
    for _ in range(3):
        worker.run_once()
        if reload(ctx, stored).hash_state == "done":
            break
    assert reload(ctx, stored).hash_state == "done"
    assert worker._pool is not pool
    with ctx.sessions() as session:
        jobs = session.execute(select(HashJob).where(HashJob.evidence_id == stored.id)).scalars().all()
    # Either the death was seen before the file was handed over (no attempt lost) or the
    # file came back from the dead pool and counted one attempt.
    assert [(job.attempts, job.state) for job in jobs] in ([], [(1, JobState.done)])
