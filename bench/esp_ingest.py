"""Partner API ingest over HTTP on loopback: submit → upload → fileinfo → finish (/ispws).

    .venv/bin/python -m bench.esp_ingest                        # SQLite in a temporary data dir
    .venv/bin/python -m bench.esp_ingest --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

A real `tipline serve --surface partner` process on a fresh data directory (`tipline init`),
one partner made with `tipline partners create NAME --json`, and 8 concurrent clients
(threads, each with its own keep-alive connection; bench/rawhttp.py, a minimal client so that
the load generator takes little of the two cores), closed loop. Two modes:

- **no files**: submit, then finish;
- **one JPEG**: submit, upload one generated JPEG (shapes, gradients and noise; sizes mixed
  from 640x480 to 3000x2000, generated once before the run), fileinfo, finish.

Every report carries a reported person with its own screen name and a public IP capture
event (addresses in 8.8.0.0/15, a US block in the bundled GeoLite2 data), so finish does the
mapping, correlation and priority work; no two reports share an identifier, so correlation
finds nothing (shared identifiers would make every finish count all earlier reports).
Printed: reports/s, p50/p95 per stage, the server's CPU per report, and the raw cost of
the same database writes: every row the run left in the database, copied into a freshly
migrated database with SQLAlchemy Core in one process (one transaction per report's worth of
rows, same engine settings), as a time per report and as a ratio to the measured time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.intake import (
    cpu_seconds,
    machine_cpu_seconds,
    own_cpu_seconds,
    percentile,
    scratch_database,
)
from bench.machine import print_machine
from bench.rawhttp import RawClient, Response
from PIL import Image, ImageDraw
from tests.serverproc import TIPLINE, ServerFailed, ServerProcess

SIZES = ((640, 480), (1024, 768), (1280, 960), (1920, 1080), (2560, 1440), (3000, 2000))
TARGETS = {"none": 200.0, "jpeg": 50.0}
STAGES = ("submit", "upload", "fileinfo", "finish")
XML = "text/xml; charset=utf-8"


# --- synthetic data -------------------------------------------------------------------------

def jpeg(seed: int, size: tuple[int, int]) -> bytes:
    """A generated photo-like JPEG: a gradient, shapes and a little noise (quality 85)."""
    rng = random.Random(seed)
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(20, max(21, width // 6))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x - r, y - r, x + r, y + r), fill=colour)
    noise = Image.frombytes("L", (width // 4, height // 4), rng.randbytes(width // 4 * (height // 4)))
    image = Image.blend(image, noise.resize(size).convert("RGB"), 0.15)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def report_xml(index: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><report><incidentSummary>'
        "<incidentType>Child Pornography (possession, manufacture, and distribution)</incidentType>"
        "<platform>ExampleApp</platform><incidentDateTime>2026-01-02T03:04:05Z</incidentDateTime>"
        "</incidentSummary><reporter><reportingPerson><email>reports@example.com</email>"
        "</reportingPerson></reporter><personOrUserReported>"
        f"<espIdentifier>user-{index}</espIdentifier><screenName>quiet_owl_{index}</screenName>"
        f"<ipCaptureEvent><ipAddress>8.8.{index // 250 % 256}.{index % 250 + 1}</ipAddress><eventName>Upload</eventName>"
        "<dateTime>2026-01-02T03:04:05Z</dateTime></ipCaptureEvent>"
        "</personOrUserReported></report>"
    ).encode()


def fileinfo_xml(report_id: int, file_id: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><fileDetails><reportId>{report_id}</reportId>'
            f"<fileId>{file_id}</fileId><fileName>IMG_{report_id}.jpg</fileName>"
            "<fileViewedByEsp>true</fileViewedByEsp><exifViewedByEsp>false</exifViewedByEsp>"
            "<publiclyAvailable>false</publiclyAvailable><fileRelevance>Reported</fileRelevance>"
            "<industryClassification>B1</industryClassification></fileDetails>").encode()


# --- load -----------------------------------------------------------------------------------

class Refused(Exception):
    pass


def _code(text: str) -> int:
    match = re.search(r"<responseCode>(\d+)</responseCode>", text)
    return int(match.group(1)) if match else -1


def _field(text: str, name: str) -> str:
    match = re.search(rf"<{name}>([^<]+)</{name}>", text)
    if not match:
        raise Refused(text[:200])
    return match.group(1)


def file_report(client: RawClient, index: int, image: bytes | None, times: dict[str, float]) -> None:
    def timed(stage: str, call: Callable[[], Response]) -> str:
        start = time.perf_counter()
        response = call()
        times[stage] = time.perf_counter() - start
        if response.status != 200 or _code(response.text) != 0:
            raise Refused(f"{stage}: {response.status} {response.text[:200]}")
        return response.text

    text = timed("submit", lambda: client.post("/ispws/submit", report_xml(index), XML))
    report_id = int(_field(text, "reportId"))
    if image is not None:
        text = timed("upload", lambda: client.post_multipart("/ispws/upload", {"id": str(report_id)}, "file",
                                                             f"IMG_{index}.jpg", image, "image/jpeg"))
        file_id = _field(text, "fileId")
        timed("fileinfo", lambda: client.post("/ispws/fileinfo", fileinfo_xml(report_id, file_id), XML))
    timed("finish", lambda: client.post_form("/ispws/finish", {"id": str(report_id)}))


@dataclass
class Outcome:
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    totals: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0
    # --hashing on, from the first request until every file was hashed (core-seconds)
    spent: dict[str, float] = field(default_factory=dict)
    client_cpu: float = 0.0
    hashed_wall: float = 0.0  # --hashing on: from the first request until every file was hashed


def run_load(url: str, auth: tuple[str, str], images: list[bytes | None], clients: int, first: int) -> Outcome:
    outcome = Outcome()
    lock = threading.Lock()
    counter = iter(range(len(images)))

    def worker() -> None:
        with RawClient(url, auth) as client:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                times: dict[str, float] = {}
                start = time.perf_counter()
                try:
                    file_report(client, first + index, images[index], times)
                except Exception as exc:  # counted and shown, never fatal
                    with lock:
                        outcome.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - start
                with lock:
                    outcome.totals.append(elapsed)
                    for stage, seconds in times.items():
                        outcome.stages[stage].append(seconds)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start, client_start = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.wall = time.perf_counter() - start
    outcome.client_cpu = time.process_time() - client_start
    return outcome


# --- hashing: the server's background worker, and the pure cost of the same hashes ------------

class HashWatch:
    """Watches the server's database until no stored file is waiting to be hashed."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy import create_engine
        self._engine = create_engine(database_url)

    def waiting(self) -> int:
        from sqlalchemy import text
        with self._engine.connect() as conn:
            found = conn.execute(text("SELECT count(*) FROM evidence_file "
                                      "WHERE hash_state NOT IN ('done', 'none', 'failed')")).scalar_one()
        return int(found)

    def wait_until_idle(self, timeout: float = 600.0) -> float:
        """Waits until nothing is waiting to be hashed; returns the wall-clock time (time.time())
        at which the server stored the last file's hashes. That time comes from the rows
        themselves, so the polling interval does not lengthen the measured run."""
        from sqlalchemy import column, func, select, table

        from tipline.db import UTCDateTime
        hashed_at = column("hashed_at", UTCDateTime())
        end = time.perf_counter() + timeout
        while self.waiting():
            if time.perf_counter() > end:
                raise TimeoutError("files still waiting to be hashed")
            time.sleep(0.25)  # a count over the table: polled more often, it costs the server's database
        with self._engine.connect() as conn:
            last = conn.execute(select(func.max(hashed_at)).select_from(table("evidence_file"))).scalar_one()
        return time.time() if last is None else float(last.timestamp())  # None: no file stored yet


def _hash_one(data: bytes) -> str:
    from tipline.matching.digests import digests_of
    from tipline.matching.perceptual import pdq_from_bytes
    result = pdq_from_bytes(data)
    return digests_of([data]).sha1 + (result.hash_hex if result else "")


def pure_hashing_rate(images: list[bytes], processes: int) -> float:
    """Images/s for full-resolution decode + PDQ + MD5/SHA-1/SHA-256 of the same JPEGs, one
    process per core, nothing else running: the floor for ingest with hashing on."""
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_hash_one, images[:processes * 2]))  # start-up and imports, not measured
        start = time.perf_counter()
        list(pool.map(_hash_one, images, chunksize=1))
        return len(images) / (time.perf_counter() - start)


def _spent(before: dict[str, float], after: dict[str, float], server_own: tuple[float, float],
           outcome: Outcome) -> dict[str, float]:
    """Where the machine's core-seconds went from the first request until the last file was
    hashed: the server process itself (HTTP, vault, writer, storing hashes and matches), its
    hashing processes, this load generator, everything else (the database server, the hash
    watcher's polls), idle cores and time stolen by the hypervisor."""
    busy = after["busy"] - before["busy"]
    hashing_children = outcome.server_cpu - sum(server_own)
    return {"server process": sum(server_own), "(of which in the kernel)": server_own[1],
            "hashing processes": hashing_children,
            "load generator": outcome.client_cpu,
            "everything else": max(0.0, busy - outcome.server_cpu - outcome.client_cpu),
            "idle": after["idle"] - before["idle"], "stolen": after["steal"] - before["steal"]}


# --- the raw cost of the same writes --------------------------------------------------------

def raw_write_seconds(source_url: str, target_url: str, reports: int) -> tuple[float, int]:
    """Copy every row the run wrote into a freshly migrated database, `reports` transactions
    of equal size, with Core executemany inserts; returns (seconds, rows)."""
    from sqlalchemy import insert, select

    from tipline import migrations
    from tipline.db import Base, make_engine

    migrations.upgrade_url(target_url)
    source, target = make_engine(source_url), make_engine(target_url)
    try:
        batches: list[tuple[Any, list[dict[str, Any]]]] = []
        with source.connect() as src, target.connect() as dst:
            for table in Base.metadata.sorted_tables:
                if dst.execute(select(table).limit(1)).first() is not None:
                    continue  # seeded by the migrations (audit head, reference data)
                rows = [dict(r._mapping) for r in src.execute(select(table))]
                if rows:
                    batches.append((table, rows))
        total = sum(len(rows) for _t, rows in batches)
        # Spread the rows over `reports` transactions, table order kept (foreign keys).
        flat = [(table, row) for table, rows in batches for row in rows]
        per = max(1, -(-len(flat) // reports))
        start = time.perf_counter()
        for offset in range(0, len(flat), per):
            chunk = flat[offset:offset + per]
            with target.begin() as conn:
                groups: dict[Any, list[dict[str, Any]]] = {}
                for table, row in chunk:
                    groups.setdefault(table, []).append(row)
                for table, rows in groups.items():
                    conn.execute(insert(table), rows)
        return time.perf_counter() - start, total
    finally:
        source.dispose()
        target.dispose()


# --- main -----------------------------------------------------------------------------------

def create_partner(env: dict[str, str]) -> tuple[str, str]:
    out = subprocess.run([TIPLINE, "partners", "create", "Example Photo App", "--json"], env=env,
                         check=True, capture_output=True, text=True).stdout
    credentials = json.loads(out)
    return credentials["username"], credentials["password"]


def request_floor(url: str, auth: tuple[str, str], clients: int, seconds: float = 3.0) -> tuple[float, float]:
    """GET /ispws/status as fast as the clients can: the HTTP + authentication floor of one
    request on this stack (requests/s, server CPU ms per request)."""
    count = [0]
    lock = threading.Lock()

    def worker() -> None:
        with RawClient(url, auth) as client:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                client.get("/ispws/status")
                with lock:
                    count[0] += 1

    pid_cpu = cpu_seconds(_SERVER_PID[0])
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = cpu_seconds(_SERVER_PID[0]) - pid_cpu
    return count[0] / seconds, used / max(count[0], 1) * 1000


_SERVER_PID = [0]


def _images(pool: list[bytes], mode: str, first: int, count: int) -> list[bytes | None]:
    return [pool[(first + i) % len(pool)] if mode == "jpeg" else None for i in range(count)]


def _profiler(prefix: str, mode: str, pid: int) -> subprocess.Popen[bytes] | None:
    if not prefix:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                             "--output", f"{prefix}-{mode}.txt", "--nonblocking", "--subprocesses"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL URL to connect to (a scratch database is made); default: SQLite")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="server processes (tipline serve --workers)")
    parser.add_argument("--reports", type=int, default=400, help="measured, per mode")
    parser.add_argument("--warmup", type=int, default=40, help="per mode, not measured")
    parser.add_argument("--modes", default="none,jpeg", help="comma-separated: none, jpeg")
    parser.add_argument("--variants", type=int, default=4, help="distinct JPEGs per size")
    parser.add_argument("--hashing", choices=("off", "on"), default="off",
                        help="on: the server hashes and matches every file (TIPLINE_HASH_WORKERS as set, "
                        "default one process per core) and a report counts once its file is hashed; "
                        "off: TIPLINE_HASH_WORKERS=0 (the partner API alone)")
    parser.add_argument("--profile", default="", help="record the server with py-spy during each "
                        "measured run into PREFIX-MODE.txt (collapsed stacks)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in TARGETS for m in modes):
        parser.error("modes are: none, jpeg")

    pool = [jpeg(seed, size) for seed in range(args.variants) for size in SIZES] if "jpeg" in modes else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="tipline-bench-") as tmp, \
            scratch_database(args.database_url) as database_url, \
            scratch_database(args.database_url) as raw_url:
        data_dir = Path(tmp) / "var"
        env = dict(os.environ, TIPLINE_DATA_DIR=str(data_dir), TIPLINE_DATABASE_URL=database_url)
        if args.hashing == "off":
            env["TIPLINE_HASH_WORKERS"] = "0"
        subprocess.run([TIPLINE, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        auth = create_partner(env)
        backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
        server_url = database_url or f"sqlite:///{data_dir / 'tipline.db'}"
        hashing = HashWatch(server_url) if args.hashing == "on" else None
        measured_images: list[bytes] = []
        # Pure hashing of the measured JPEGs, just before the run and again after the server
        # stopped: this host's speed drifts by 10% within minutes, and the mean of the two
        # brackets the run.
        floors: list[float] = []
        cores = len(os.sched_getaffinity(0))
        filed = 0
        try:
            with ServerProcess(env, Path(tmp) / "server.log", surface="partner",
                               workers=args.workers) as server:
                _SERVER_PID[0] = server.pid
                floor = request_floor(server.url, auth, args.clients)
                for mode in modes:
                    warm = run_load(server.url, auth, _images(pool, mode, filed, args.warmup), args.clients, filed)
                    filed += args.warmup
                    if hashing is not None:
                        hashing.wait_until_idle()
                    images = _images(pool, mode, filed, args.reports)
                    if mode == "jpeg":
                        measured_images = [image for image in images if image is not None]
                        if hashing is not None:  # the server is idle now
                            floors.append(pure_hashing_rate(measured_images, cores))
                    spy = _profiler(args.profile, mode, server.pid)
                    before = cpu_seconds(server.pid)
                    own_before, machine_before = own_cpu_seconds(server.pid), machine_cpu_seconds()
                    started = time.time()  # wall clock: compared with the server's hashed_at
                    outcome = run_load(server.url, auth, images, args.clients, filed)
                    if hashing is not None and mode == "jpeg":
                        # A report counts once its file is hashed and matched.
                        outcome.hashed_wall = hashing.wait_until_idle() - started
                    if spy is not None:
                        spy.send_signal(2)
                        spy.wait(timeout=60)
                    outcome.server_cpu = cpu_seconds(server.pid) - before
                    if outcome.hashed_wall:
                        own_after = own_cpu_seconds(server.pid)
                        outcome.spent = _spent(machine_before, machine_cpu_seconds(),
                                               (own_after[0] - own_before[0], own_after[1] - own_before[1]),
                                               outcome)
                    outcome.errors += warm.errors
                    filed += args.reports
                    rows.append((mode, outcome))
        except ServerFailed as exc:
            sys.exit(str(exc))
        if not server_url.startswith("postgresql"):
            found = list(data_dir.glob("*.db"))
            server_url = f"sqlite:///{found[0]}" if found else server_url
        raw_target = raw_url or f"sqlite:///{Path(tmp) / 'raw.db'}"
        raw_seconds, raw_rows = raw_write_seconds(server_url, raw_target, filed)
    hashing_floor = 0.0
    if args.hashing == "on" and measured_images:
        floors.append(pure_hashing_rate(measured_images, cores))
        hashing_floor = sum(floors) / len(floors)

    jpeg_sizes = sorted(len(p) for p in pool)
    print(f"Partner API ingest over loopback (/ispws): {backend}, {args.workers} server processes, "
          f"hashing {args.hashing}, "
          f"{args.clients} concurrent clients, "
          f"closed loop, {args.reports} reports per mode after {args.warmup} warm-up")
    if pool:
        print(f"JPEGs: {len(pool)} generated, {SIZES[0][0]}x{SIZES[0][1]} to {SIZES[-1][0]}x{SIZES[-1][1]}, "
              f"{jpeg_sizes[0] // 1024}–{jpeg_sizes[-1] // 1024} KiB "
              f"(median {jpeg_sizes[len(jpeg_sizes) // 2] // 1024} KiB)")
    print()
    print("| mode | reports/s | target | submit p50/p95 | upload p50/p95 | fileinfo p50/p95 "
          "| finish p50/p95 | report p95 | CPU/report: server, client | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, outcome in rows:
        def cell(values: list[float]) -> str:
            if not values:
                return "–"
            return f"{percentile(values, 50) * 1000:.0f} / {percentile(values, 95) * 1000:.0f} ms"
        rate = len(outcome.totals) / outcome.wall
        label = "no files" if mode == "none" else "one JPEG"
        verdict = "met" if rate >= TARGETS[mode] else "MISSED"
        print(f"| {label} | {rate:.1f} | ≥{TARGETS[mode]:.0f} {verdict} | "
              + " | ".join(cell(outcome.stages[s]) for s in STAGES)
              + f" | {percentile(outcome.totals, 95) * 1000:.0f} ms"
              + f" | {outcome.server_cpu / max(len(outcome.totals), 1) * 1000:.1f} ms, "
              + f"{outcome.client_cpu / max(len(outcome.totals), 1) * 1000:.1f} ms | {len(outcome.errors)} |")
    print()
    per_report = raw_seconds / max(filed, 1)
    print(f"Raw cost of the same writes: {raw_rows} rows ({raw_rows / max(filed, 1):.1f} per report) copied "
          f"with SQLAlchemy Core, one transaction per report: {per_report * 1000:.2f} ms per report "
          f"(= {1 / per_report:.0f} reports/s if writes were all there was)")
    for mode, outcome in rows:
        served = outcome.wall / max(len(outcome.totals), 1)
        print(f"  {mode}: measured {served * 1000:.2f} ms of wall time per report = "
              f"{served / per_report:.1f}x the raw writes")
    if hashing_floor:
        for mode, outcome in rows:
            if mode == "jpeg" and outcome.hashed_wall:
                rate = len(outcome.totals) / outcome.hashed_wall
                print(f"With hashing: {rate:.1f} reports/s until every file was hashed and matched; "
                      f"pure hashing of the same {args.reports} JPEGs on {cores} processes: "
                      f"{hashing_floor:.1f} images/s (before the run {floors[0]:.1f}, after {floors[-1]:.1f}); "
                      f"ratio {rate / hashing_floor:.2f} "
                      f"(target ≥ 0.80: {'met' if rate / hashing_floor >= 0.8 else 'MISSED'})")
                per = 1000 / len(outcome.totals)
                print("  core time per report from the first request until the watcher saw no file waiting "
                      "(it looks every 0.25 s, so idle includes up to half a second of core time): "
                      + ", ".join(f"{name} {seconds * per:.1f} ms" for name, seconds in outcome.spent.items())
                      + f"; pure hashing {cores * 1000 / hashing_floor:.1f} ms")
    print(f"HTTP + authentication floor: GET /ispws/status {floor[0]:.0f} requests/s, "
          f"{floor[1]:.1f} ms server CPU per request (a report is 2 requests without a file, 4 with)")
    for _mode, outcome in rows:
        for error in outcome.errors[:3]:
            print(f"  error: {error}")
    print()
    print_machine(args.database_url or None)


if __name__ == "__main__":
    main()
