"""Loading a bank into the match index at start-up: how long N PDQ entries take.

    .venv/bin/python -m bench.index_load                      # 10M entries, SQLite
    .venv/bin/python -m bench.index_load --entries 1000000 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

A freshly migrated database (a temporary SQLite file, or a scratch PostgreSQL database made
next to the one named), one bank, and N PDQ entries of random 256-bit hashes written straight
into the entry table (not through `banks import`, which the 1M-line CLI test covers): one entry in 20 is an
MD5 entry (written first), so the loader also reads pages it keeps nothing of.
Then `MatchIndex.refresh` loads them as the hashing worker does at start-up (pages of
`LOAD_PAGE` entries, each in its own short transaction), and every 100,000th PDQ entry is
looked up to check it came back with its own id. Printed: the time to fill (not the point),
the load split into reading and building, the resident memory the index added, and the
target (under 30 s for 10M).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from bench.intake import scratch_database
from bench.machine import print_machine

from tipline import clock, migrations
from tipline.db import make_engine, make_sessionmaker, transaction
from tipline.matching import bank_index, banks
from tipline.matching.index import PdqIndex
from tipline.matching.models import BankEntry, CategoryScheme

FILL_BATCH = 200_000


def rss_bytes() -> int:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fill(url: str, entries: int, seed: int) -> tuple[float, dict[int, str]]:
    """Write the entries; returns (seconds, a sample of id -> PDQ hex to check afterwards).
    Rows go in sorted by (kind, value), so the unique (bank, kind, value) and (kind, value)
    indexes grow at their ends: in random order, 10M rows took over 20 minutes to write."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        bank_id = banks.create_bank(session, name="bench", category_scheme=CategoryScheme.custom,
                                    default_category=None, actor="bench").id
    rng = np.random.default_rng(seed)
    md5_count = entries // 20  # every 20th entry is an MD5 one
    ordered = []
    for kind, count, size in (("md5", md5_count, 16), ("pdq", entries - md5_count, 32)):
        values = rng.integers(0, 256, size=(count, size), dtype=np.uint8)
        # Sorting by the first 8 bytes orders the hex text too (ties are vanishingly rare).
        keys = values[:, :8].copy().view(">u8").ravel()
        ordered.append((kind, values[np.argsort(keys, kind="stable")]))
    table = BankEntry.__table__
    now = clock.now()
    sqlite = url.startswith("sqlite")
    stamp = now.replace(tzinfo=None).isoformat(sep=" ")
    sample: dict[int, str] = {}
    start = time.perf_counter()
    next_id = 1
    with engine.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA cache_size=-262144")
            conn.commit()
        for kind, values in ordered:
            for first in range(0, len(values), FILL_BATCH):
                rows = []
                for row in values[first:first + FILL_BATCH]:
                    value = row.tobytes().hex()
                    rows.append((next_id, kind, value))
                    if kind == "pdq" and next_id % 100_000 == 1:
                        sample[next_id] = value
                    next_id += 1
                with conn.begin():
                    if sqlite:
                        # The driver directly, values as SQLAlchemy stores them: 3x faster.
                        conn.exec_driver_sql(
                            "INSERT INTO hash_bank_entry (id, bank_id, kind, value, label, added_at) "
                            "VALUES (?, ?, ?, ?, '', ?)",
                            [(i, bank_id.hex, k, v, stamp) for i, k, v in rows])
                    else:
                        conn.execute(table.insert(), [  # type: ignore[attr-defined]
                            {"id": i, "bank_id": bank_id, "kind": k, "value": v, "label": "",
                             "added_at": now, "import_id": None, "category": None, "frames": None}
                            for i, k, v in rows])
                print(f"\r  filled {next_id - 1:,} of {entries:,}", end="", flush=True)
    print()
    engine.dispose()
    return time.perf_counter() - start, sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (a scratch database is made); "
                        "default: a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tipline-index-load-") as tmp, \
            scratch_database(args.database_url) as scratch:
        url = scratch or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrations.upgrade_url(url)
        database = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
        print(f"Filling {args.entries:,} entries ({database}) ...")
        fill_seconds, sample = fill(url, args.entries, args.seed)

        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        index = bank_index.MatchIndex()
        built: list[float] = []
        original_build = PdqIndex.build

        def timed_build(*a: object, **k: object) -> PdqIndex:
            started = time.perf_counter()
            result = original_build(*a, **k)
            built.append(time.perf_counter() - started)
            return result

        PdqIndex.build = timed_build
        before = rss_bytes()
        start = time.perf_counter()
        loaded = index.refresh(lambda: transaction(sessions))
        seconds = time.perf_counter() - start
        grown = rss_bytes() - before
        PdqIndex.build = original_build
        wrong = [entry_id for entry_id, value in sample.items()
                 if [hit[0] for hit in index.pdq_hits([bytes.fromhex(value)], 0)[0]] != [entry_id]]
        engine.dispose()

    build = built[0] if built else 0.0
    ok = seconds < 30 or args.entries < 10_000_000
    print(f"\nLoading the match index at start-up ({database}, {args.entries:,} entries, "
          f"pages of {bank_index.LOAD_PAGE:,}, run {uuid.uuid4().hex[:6]})\n")
    print("| entries | PDQ loaded | fill (not measured) | load | of which reading | of which building | "
          "memory added | checked | target |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    target = "< 30 s at 10M: " + ("met" if ok else "**MISSED**") if args.entries >= 10_000_000 else "(10M: < 30 s)"
    print(f"| {args.entries:,} | {loaded:,} | {fill_seconds:.0f} s | {seconds:.1f} s | {seconds - build:.1f} s | "
          f"{build:.1f} s | {grown / 2**30:.2f} GiB | {len(sample) - len(wrong)} of "
          f"{len(sample)} ok | {target} |")
    if wrong:
        raise SystemExit(f"entries not found under their own id: {wrong[:5]}")
    print()
    print_machine()


if __name__ == "__main__":
    main()
