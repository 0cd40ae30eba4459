# ruff: noqa: A005
# (bench/queue.py is the name the issue gives; it is run with -m, never imported as "queue")
"""The analyst queue page with 100,000 reports in the database, over HTTP on loopback.

    .venv/bin/python -m bench.queue                        # SQLite in a temporary data dir
    .venv/bin/python -m bench.queue --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

With a PostgreSQL URL a scratch database is created next to the one named (which is only
used to connect) and dropped afterwards. The data directory is made by
`tipline init --no-directory`; synthetic reports (invented values only, no text anyone
wrote) are bulk-inserted with SQLAlchemy Core in batches, with a spread of statuses, types,
countries, priority scores and due dates like a busy hotline's, about 5% of them assigned
to one of five analysts. One of those analysts signs in through the pages (password, then a
TOTP code computed from the secret the benchmark enrolled) against a real
`tipline serve --surface staff` process, and each request below is timed sequentially
after a short warm-up. The latency is the whole GET as the client sees it.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from bench.intake import percentile, scratch_database
from bench.machine import print_machine
from tests.serverproc import TIPLINE, serving_or_exit

TARGET = 0.200
PASSWORD = "bench horse battery staple"
BATCH = 5000

# (status, share of all reports): a backlog of open reports on top of years of closed ones.
STATUSES = [
    ("received", 0.10), ("in_review", 0.05), ("referred", 0.04), ("investigating", 0.03),
    ("evidence_collected", 0.01), ("prosecution", 0.01), ("closed", 0.55),
    ("not_actionable", 0.16), ("duplicate", 0.04), ("retracted", 0.01),
]
TYPES = [("harassment", 0.25), ("image_pressure", 0.25), ("sextortion", 0.25), ("csam", 0.15),
         ("other", 0.10)]
COUNTRIES = [("US", 0.40), ("GB", 0.12), ("CA", 0.06), ("AU", 0.05), ("DE", 0.05),
             ("FR", 0.04), ("IN", 0.04), ("PH", 0.04), ("BR", 0.04), ("NG", 0.03),
             ("MX", 0.03), ("ES", 0.03), ("IT", 0.03), ("NL", 0.02), ("IE", 0.02)]
SOURCES = [("public_web", 0.55), ("public_api", 0.15), ("partner", 0.25), ("staff_phone", 0.05)]
AGE_BANDS = [("under_9", 0.08), ("9_12", 0.22), ("13_15", 0.40), ("16_17", 0.18), ("unknown", 0.12)]
REGIONS = ["Ohio", "Texas", "California", "Cleveland, Ohio", "NY", "Florida", ""]
REASONS = [(100, "child in immediate danger"), (40, "sextortion with a deadline (tonight)"),
           (35, "a meeting is planned"), (30, "child under 13"),
           (25, "sextortion: money demanded"), (10, "ongoing contact")]


def pick(rng: random.Random, table: list[tuple[str, float]]) -> str:
    return rng.choices([value for value, _ in table], weights=[w for _, w in table])[0]


# --- synthetic data -------------------------------------------------------------------------

def synthetic_reports(count: int, analysts: list[uuid.UUID], seed: int = 7) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows for the report table: invented values only."""
    from tipline.triage import priority

    rng = random.Random(seed)
    now = datetime.now(UTC)
    ids: list[uuid.UUID] = []
    batch: list[dict[str, Any]] = []
    for index in range(count):
        ident = uuid.UUID(int=rng.getrandbits(128), version=4)
        status = pick(rng, STATUSES)
        # Open reports are recent; the rest are spread over two years.
        age = timedelta(hours=rng.uniform(0, 24 * 21)) if status in ("received", "in_review") \
            else timedelta(hours=rng.uniform(24, 24 * 730))
        created = now - age
        reasons = [reason for points, reason in REASONS if rng.random() < (0.03 if points >= 100 else 0.12)]
        score = sum(points for points, reason in REASONS if reason in reasons)
        types = sorted({pick(rng, TYPES) for _ in range(rng.choice((1, 1, 1, 2)))})
        country = pick(rng, COUNTRIES)
        child_country = country if rng.random() < 0.8 else None
        reporter_country = country if rng.random() < 0.7 else pick(rng, COUNTRIES)
        # About 5% of all reports are assigned: every report in review has an analyst.
        assigned = analysts[index % len(analysts)] if status == "in_review" else None
        closed = status in ("closed", "not_actionable", "duplicate", "retracted")
        batch.append({
            "id": ident, "reference": f"TL-B{index:07d}", "source": pick(rng, SOURCES),
            "status": status, "created_at": created, "updated_at": created,
            "reporter_role": rng.choice(("child_self", "parent_carer", "professional", "other_adult")),
            "incident_types": types, "frequency": rng.choice(("once", "repeated", "unsure")),
            "certainty": rng.choice(("certain", "suspicious")), "happened_on": None,
            "happened_period": "", "immediate_danger": "child in immediate danger" in reasons,
            "platform": rng.choice(("ExampleChat", "PixelPlay", "SnapNest", "")),
            "urls": [f"https://chat.example.org/u/user{rng.randrange(50_000)}"],
            "suspect": {"usernames": [f"user{rng.randrange(50_000)}"], "profile_links": [],
                        "emails": [], "phones": [], "details": ""},
            "child_age_band": pick(rng, AGE_BANDS), "child_country": child_country,
            "child_region": rng.choice(REGIONS) if child_country == "US" else "",
            "reporter_country": reporter_country,
            "description": f"Synthetic benchmark report number {index}.",
            "sextortion": {"demands": [], "deadline": ""}, "meeting_planned": "unsure",
            "meeting_details": "", "anonymous": True, "contact_sealed": None, "language": "en",
            "codename_hash": None, "priority_score": score, "priority_reasons": reasons,
            "due_at": priority.due(created, score), "assigned_to_id": assigned,
            "confirmed_types": types if status not in ("received",) else None,
            "triaged_at": created + timedelta(hours=rng.uniform(0.2, 72)) if status != "received" else None,
            "referred_at": created + timedelta(hours=rng.uniform(2, 120))
            if status in ("referred", "investigating", "evidence_collected", "prosecution", "closed") else None,
            "closed_at": created + timedelta(days=rng.uniform(1, 200)) if closed else None,
            "merged_into_id": rng.choice(ids) if status == "duplicate" and ids else None,
        })
        ids.append(ident)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class Seeded:
    email: str
    secret: str
    insert_seconds: float
    open_reports: int
    mine: int


def seed(data_dir: Path, database_url: str, count: int) -> Seeded:
    from sqlalchemy import func, insert, select

    from tipline import crypto
    from tipline.accounts import service as accounts
    from tipline.accounts.models import User
    from tipline.accounts.permissions import Role
    from tipline.db import make_engine, make_sessionmaker, transaction
    from tipline.reports.models import Report
    from tipline.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url)
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    keys = crypto.load_keys(settings.keys_dir)
    email = "bench-analyst@example.org"
    with transaction(sessions) as session:
        analysts = []
        for n in range(5):
            user = accounts.create_user(
                session, email=email if n == 0 else f"analyst{n}@example.org",
                display_name=f"Analyst {n}", role=Role.analyst, password=PASSWORD, actor="bench")
            analysts.append(user.id)
        me = session.get(User, analysts[0])
        assert me is not None
        secret = accounts.enrolment_secret(session, keys, me)
    start = time.perf_counter()
    statement = insert(Report.__table__)  # type: ignore[arg-type]
    for batch in synthetic_reports(count, analysts):
        with engine.begin() as conn:
            conn.execute(statement, batch)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE report")
        else:
            conn.exec_driver_sql("ANALYZE")
    elapsed = time.perf_counter() - start
    with sessions() as session:
        open_reports = session.execute(select(func.count()).select_from(Report).where(
            Report.status.in_(("received", "in_review")))).scalar_one()
        mine = session.execute(select(func.count()).select_from(Report).where(
            Report.assigned_to_id == analysts[0])).scalar_one()
    engine.dispose()
    return Seeded(email, secret, elapsed, int(open_reports), int(mine))


# --- the server and the signed-in analyst -----------------------------------------------------

def staff_server(env: dict[str, str], log: Path) -> AbstractContextManager[tuple[str, int]]:
    return serving_or_exit(env, log, "staff")


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if not match:
        sys.exit("no CSRF token on the page")
    return match.group(1)


def sign_in(client: httpx.Client, email: str, secret: str) -> None:
    from tipline.accounts import totp

    page = client.get("/staff/login")
    response = client.post("/staff/login", data={"email": email, "password": PASSWORD,
                                                  "csrf_token": csrf(page.text)})
    if "/staff/2fa" not in str(response.url):
        sys.exit(f"password step failed: {response.status_code} {response.text[:300]}")
    code = totp.code_at(secret, totp.step_at(datetime.now(UTC)))
    done = client.post("/staff/2fa", data={"code": code, "csrf_token": csrf(response.text)})
    if done.status_code != 200 or "/staff/2fa" in str(done.url):
        sys.exit(f"second factor failed: {done.status_code} {done.text[:300]}")


# --- main -----------------------------------------------------------------------------------

REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("default (open, first page)", {}),
    ("country=US", {"country": "US"}),
    ("incident_type=sextortion", {"incident_type": "sextortion"}),
    ("assigned=me", {"assigned": "me"}),
    ("status=all", {"status": "all"}),
    ("status=all, page=500", {"status": "all", "page": "500"}),
]
_TOTAL = re.compile(r'<span class="hint">\((\d+)\)</span>')


def time_requests(client: httpx.Client, params: dict[str, str], count: int, warmup: int) -> tuple[list[float], int]:
    total = -1
    for _ in range(warmup):
        client.get("/staff/queue", params=params)
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        response = client.get("/staff/queue", params=params)
        latencies.append(time.perf_counter() - start)
        if response.status_code != 200 or 'id="queue"' not in response.text:
            sys.exit(f"GET /staff/queue {params}: {response.status_code} {response.text[:300]}")
        found = _TOTAL.search(response.text)
        total = int(found.group(1)) if found else -1
    return latencies, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL URL to connect to (a scratch database is made); "
                             "default: SQLite in the data directory")
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30, help="measured, per row of the table")
    parser.add_argument("--warmup", type=int, default=3, help="per row, not measured")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tipline-bench-") as tmp, \
            scratch_database(args.database_url) as database_url:
        data_dir = Path(tmp) / "var"
        env = dict(os.environ, TIPLINE_DATA_DIR=str(data_dir), TIPLINE_DATABASE_URL=database_url)
        subprocess.run([TIPLINE, "init", "--no-directory"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        seeded = seed(data_dir, database_url, args.reports)
        backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
        rows = []
        with staff_server(env, Path(tmp) / "server.log") as (url, _pid), \
                httpx.Client(base_url=url, timeout=60, follow_redirects=True) as client:
            sign_in(client, seeded.email, seeded.secret)
            for label, params in REQUESTS:
                latencies, total = time_requests(client, params, args.requests, args.warmup)
                rows.append((label, total, latencies))

    print(f"Staff queue GET /staff/queue over loopback: {backend}, {args.reports:,} reports "
          f"({seeded.open_reports:,} open, {seeded.mine:,} assigned to the signed-in analyst), "
          f"{args.requests} sequential requests per row after {args.warmup} warm-up; "
          f"bulk insert took {seeded.insert_seconds:.1f} s")
    print()
    print("| request | reports matched | p50 | p95 | max | p95 < 200 ms |")
    print("|---|---:|---:|---:|---:|---|")
    for label, total, lat in rows:
        p95 = percentile(lat, 95)
        print(f"| {label} | {total:,} | {percentile(lat, 50) * 1000:.0f} ms | "
              f"{p95 * 1000:.0f} ms | {max(lat) * 1000:.0f} ms | "
              f"{'met' if p95 < TARGET else 'MISSED'} |")
    print()
    print_machine(args.database_url or None)


if __name__ == "__main__":
    main()
