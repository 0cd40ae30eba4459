"""Public intake over HTTP on loopback: concurrent reporters filing reports with a picture.

    .venv/bin/python -m bench.intake                        # SQLite in a temporary data dir
    .venv/bin/python -m bench.intake --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

With a PostgreSQL URL a scratch database is created next to the one named (which is only
used to connect) and dropped afterwards. A real `tipline serve` process is started on a
fresh data directory (`tipline init`), then for each path (JSON API, web form) the
reporters send a warm-up and then a fixed number of submissions, each with a different
generated PNG of pure noise (noise does not compress, so the file is as large as asked).
The latency of a submission is the time of its POST; the web form also does a GET of the
form first (a fresh visitor: cookie and CSRF token), which is not in the latency but is in
the throughput.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from bench.machine import print_machine
from PIL import Image
from tests.serverproc import TIPLINE, serving_or_exit

TARGET_P95 = 0.5


# --- synthetic data: generated noise pictures and invented answers -------------------------

def noise_png(seed: int, size_bytes: int) -> bytes:
    """A PNG of random pixels of about `size_bytes` (random data does not compress)."""
    rng = random.Random(seed)
    side = max(8, int((size_bytes / 3) ** 0.5))
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def report_json(index: int) -> dict[str, object]:
    return {
        "reporter_role": "other_adult",
        "incident_types": ["image_pressure"],
        "certainty": "suspicious",
        "platform": "PixelPlay",
        "urls": [f"https://pixelplay.example.com/profile/quietowl{index}"],
        "suspect": {"usernames": [f"quietowl{index}"], "details": "Says he is 15."},
        "child_age_band": "9_12",
        "child_country": "US",
        "child_region": "Ohio",
        "description": "A player asks an 11-year-old girl to go on camera.",
    }


def report_fields(index: int) -> dict[str, str | list[str]]:
    return {
        "reporter_role": "parent_carer",
        "incident_types": ["sextortion"],
        "frequency": "repeated",
        "certainty": "certain",
        "platform": "ExampleChat",
        "urls": f"https://chat.example.org/u/shadowfox{index}",
        "suspect_usernames": f"shadowfox_{index}",
        "child_age_band": "13_15",
        "child_country": "GB",
        "reporter_country": "GB",
        "description": "An account keeps messaging my son and demands money.",
        "sextortion_demands": ["money"],
        "sextortion_deadline": "Friday evening",
        "anonymous": "yes",
    }


# --- the server under test ------------------------------------------------------------------

@contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """Yield the database URL for the run: empty for SQLite, a fresh PostgreSQL database."""
    if not url or url.startswith("sqlite"):
        yield url or ""
        return
    from sqlalchemy import create_engine, text

    name = f"tipline_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def running_server(env: dict[str, str], log: Path) -> AbstractContextManager[tuple[str, int]]:
    return serving_or_exit(env, log, "public")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants (Linux /proc): a
    server with worker processes counts them all."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree = {pid}
    grew = True
    while grew:
        before = len(tree)
        tree |= {child for child, parent in parents.items() if parent in tree}
        grew = len(tree) != before
    return sum(times.get(p, 0.0) for p in tree)


def own_cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of one process, without its children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / os.sysconf("SC_CLK_TCK"), int(fields[12]) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> dict[str, float]:
    """Core-seconds the whole machine has spent busy, idle and stolen by the hypervisor
    since boot (/proc/stat): differences over a run say whether cores sat idle."""
    values = [int(v) / os.sysconf("SC_CLK_TCK") for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0.0] * 8)[:8]
    return {"busy": user + nice + system + irq + softirq, "idle": idle + iowait, "steal": steal}


# --- load -----------------------------------------------------------------------------------

Submit = Callable[[httpx.Client, int, bytes], tuple[float, str | None]]


def submit_api(client: httpx.Client, index: int, image: bytes) -> tuple[float, str | None]:
    files = [("report", (None, json.dumps(report_json(index)), "application/json")),
             ("files", (f"screenshot-{index}.png", image, "image/png"))]
    start = time.perf_counter()
    response = client.post("/api/v1/reports", files=files)
    elapsed = time.perf_counter() - start
    if response.status_code != 201:
        return elapsed, f"{response.status_code} {response.text[:200]}"
    return elapsed, None


def submit_form(client: httpx.Client, index: int, image: bytes) -> tuple[float, str | None]:
    client.cookies.clear()  # a fresh visitor every time
    page = client.get("/report")
    token = page.text.split('name="csrf_token" value="', 1)[-1].split('"', 1)[0]
    if page.status_code != 200 or not token or len(token) > 200:
        return 0.0, f"GET /report: {page.status_code}"
    data = {**report_fields(index), "csrf_token": token}
    start = time.perf_counter()
    response = client.post("/report", data=data,
                           files=[("files", (f"screenshot-{index}.png", image, "image/png"))])
    elapsed = time.perf_counter() - start
    if response.status_code != 201:
        return elapsed, f"{response.status_code} {response.text[:200]}"
    return elapsed, None


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0


def run_load(url: str, submit: Submit, images: list[bytes], reporters: int,
             rate: float | None = None) -> Outcome:
    """Closed loop (each reporter sends again as soon as it has its receipt), or, with
    `rate`, open loop: submission i is due at i / rate seconds and its latency counts from
    then, so time spent waiting for a free reporter is not hidden."""
    outcome = Outcome()
    lock = threading.Lock()
    counter = iter(range(len(images)))
    start = time.perf_counter()

    def reporter() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                late = 0.0
                if rate:
                    due = start + index / rate
                    time.sleep(max(0.0, due - time.perf_counter()))
                    late = time.perf_counter() - due
                try:
                    elapsed, error = submit(client, index, images[index])
                except Exception as exc:  # counted and shown, never fatal
                    elapsed, error = 0.0, f"{type(exc).__name__}: {exc}"
                with lock:
                    if error is None:
                        outcome.latencies.append(late + elapsed)
                    else:
                        outcome.errors.append(error)

    threads = [threading.Thread(target=reporter) for _ in range(reporters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.wall = time.perf_counter() - start
    return outcome


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def argon2_cost_and_time(data_dir: Path, database_url: str) -> tuple[str, float]:
    from tipline import crypto
    from tipline.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url)
    cost = crypto.Argon2Cost(settings.argon2_time_cost, settings.argon2_memory_kib,
                             settings.argon2_parallelism)
    keys = crypto.load_keys(settings.keys_dir)
    timings = []
    for i in range(7):
        start = time.perf_counter()
        crypto.lookup_hash(keys, f"seven random words for a codename {i}", cost)
        timings.append(time.perf_counter() - start)
    described = (f"time_cost={cost.time_cost}, memory={cost.memory_kib} KiB, "
                 f"parallelism={cost.parallelism}")
    return described, statistics.median(timings)


# --- main -----------------------------------------------------------------------------------

PATHS: dict[str, tuple[str, Submit]] = {
    "api": ("JSON API  POST /api/v1/reports", submit_api),
    "form": ("web form  POST /report (+GET)", submit_form),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL URL to connect to (a scratch database is made); "
                             "default: SQLite in the data directory")
    parser.add_argument("--reporters", type=int, default=10)
    parser.add_argument("--submissions", type=int, default=300, help="measured, per path")
    parser.add_argument("--warmup", type=int, default=30, help="per path, not measured")
    parser.add_argument("--file-kb", type=int, default=200)
    parser.add_argument("--paths", default="api,form", help="comma-separated: api, form")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: submissions per second (default: closed loop, "
                             "every reporter sends again as soon as it has its receipt)")
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    for path in paths:
        if path not in PATHS:
            parser.error(f"unknown path {path!r}")

    count = (args.warmup + args.submissions) * len(paths)
    images = [noise_png(seed, args.file_kb * 1024) for seed in range(count)]
    sizes = [len(image) for image in images]

    with tempfile.TemporaryDirectory(prefix="tipline-bench-") as tmp, \
            scratch_database(args.database_url) as database_url:
        data_dir = Path(tmp) / "var"
        env = dict(os.environ, TIPLINE_DATA_DIR=str(data_dir), TIPLINE_DATABASE_URL=database_url)
        subprocess.run([TIPLINE, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        argon2, argon2_seconds = argon2_cost_and_time(data_dir, database_url)
        backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
        rows = []
        with running_server(env, Path(tmp) / "server.log") as (url, pid):
            offset = 0
            for path in paths:
                label, submit = PATHS[path]
                warm = images[offset:offset + args.warmup]
                measured = images[offset + args.warmup:offset + args.warmup + args.submissions]
                offset += args.warmup + args.submissions
                run_load(url, submit, warm, args.reporters)
                cpu_before, client_before = cpu_seconds(pid), time.process_time()
                outcome = run_load(url, submit, measured, args.reporters, args.rate)
                outcome.server_cpu = cpu_seconds(pid) - cpu_before
                outcome.client_cpu = time.process_time() - client_before
                rows.append((label, len(measured), outcome))

    mode = (f"open loop at {args.rate:g} submissions/s (latency from the due time)"
            if args.rate else "closed loop")
    print(f"Public intake over loopback: {backend}, {args.reporters} concurrent reporters, {mode}, "
          f"{args.submissions} submissions per path after {args.warmup} warm-up, one PNG each "
          f"(median {statistics.median(sizes) / 1024:.0f} KiB)")
    print()
    print("| path | submissions/s | p50 | p95 | p99 | max | CPU / submission: server, client "
          "| errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, n, outcome in rows:
        lat = outcome.latencies
        ok = len(lat)
        print(f"| {label} | {ok / outcome.wall:.1f} | {percentile(lat, 50):.3f} s | "
              f"{percentile(lat, 95):.3f} s | {percentile(lat, 99):.3f} s | "
              f"{max(lat, default=float('nan')):.3f} s | "
              f"{outcome.server_cpu / max(n, 1) * 1000:.0f} ms, "
              f"{outcome.client_cpu / max(n, 1) * 1000:.0f} ms | {len(outcome.errors)} |")
    print()
    print(f"Argon2id codename cost: {argon2}; one hash takes {argon2_seconds * 1000:.0f} ms "
          "(median of 7, server idle)")
    for label, _n, outcome in rows:
        p95 = percentile(outcome.latencies, 95)
        verdict = "met" if p95 < TARGET_P95 else "MISSED"
        print(f"target p95 < {TARGET_P95} s: {verdict} for {label.split('  ')[0]}")
        for error in outcome.errors[:3]:
            print(f"  error: {error}")
    print()
    print_machine(args.database_url or None)


if __name__ == "__main__":
    main()
