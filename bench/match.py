"""PDQ matching: Tipline's index beside threatexchange's and brute force, in one run.

    flock /tmp/tipline-heavy.lock .venv/bin/python -m bench.match
    .venv/bin/python -m bench.match --sizes 100000 --clustered-size 100000 --seconds 3

Banks of uniformly random 256-bit hashes (one per --sizes entry) and one clustered bank
(--clustered-size hashes around --centres centres, each 0..--cluster-flips random bits away
from its centre, like re-encoded copies of the same pictures). Every method gets the same
queries, alternating planted near-duplicates (a bank hash with exactly d random bits
flipped, d = 0..31 evenly, in random order) and random hashes, at distance 31 (HMA's
threshold). Recall = share of planted queries whose source entry came back at distance d;
"false" = results farther than 31 or with a wrong distance (an error whenever it is not 0);
"= brute" = queries whose whole answer equals brute force's, over the queries both answered.

Columns, per method:
* build: seconds to build from arrays already in memory (threatexchange: from (hex, id)
  pairs, as HMA calls `PDQIndex.build`); memory: growth of the resident set over the build,
  after malloc_trim (for Tipline also its arrays' bytes);
* 1-query q/s: one hash per call, as an HTTP matcher does, on 1 and on 2 threads (two
  workers of one process), with p50/p99 latency on 1 thread;
* batch q/s: many hashes per call on 1 and 2 threads. threatexchange's `PDQIndex` has no batch
  call; its batch figures use the faiss layer below it (`PDQIndex.index`,
  `search_with_distance_in_result`, faiss OpenMP over queries), which HMA does not use.
Each timed loop stops after --seconds, so slow methods answer fewer queries (n is printed).
Methods run one after another, each freed before the next, so their memory never adds up.

The threatexchange column needs `threatexchange` importable by the Python that runs this;
it builds pdqhash from source (g++) and pulls faiss-cpu, so use a throwaway venv:

    python3.11 -m venv /tmp/tx-venv
    /tmp/tx-venv/bin/pip install threatexchange==1.2.17 numba numpy
    PYTHONPATH=src flock /tmp/tipline-heavy.lock /tmp/tx-venv/bin/python -m bench.match

Without it, or with --skip-threatexchange, that column is left out with a message.
At 10 M, threatexchange needs about 6 GB and 110-140 s to build; the default run takes about
6 minutes and 9.5 GB at its peak.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from bench.machine import print_machine
from numba import types as nb_types
from numba.extending import intrinsic
from numpy.typing import NDArray

from tipline.matching.index import PdqIndex, hash_from_hex, stack_hashes

DISTANCE = 31
ID_STEP, ID_BASE = 3, 1000  # entry ids are ID_BASE + ID_STEP * row: not row numbers

Answer = frozenset[tuple[int, int]]  # (entry id, distance)


@dataclass
class Bank:
    name: str
    ids: NDArray[np.int64]
    hashes: NDArray[np.uint8]
    queries: NDArray[np.uint8]  # (m, 32)
    sources: NDArray[np.int64]  # bank row a planted query came from, -1 for a random query
    flips: NDArray[np.int64]  # bits flipped in a planted query


@dataclass
class Result:
    method: str
    build_s: float | None = None
    arrays_mb: float | None = None
    rss_mb: float | None = None
    single_qps: float | None = None
    single_n: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    single2_qps: float | None = None
    batch_qps: float | None = None
    batch2_qps: float | None = None
    answers: dict[int, Answer] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- banks and queries -------------------------------------------------------------------

def flip_bits(rng: np.random.Generator, rows: NDArray[np.uint8],
              counts: NDArray[np.int64]) -> NDArray[np.uint8]:
    """Each row with exactly counts[i] distinct random bits flipped."""
    bits = np.unpackbits(rows, axis=1)
    order = np.argsort(rng.random(bits.shape), axis=1)  # a random permutation per row
    chosen = np.arange(256)[None, :] < counts[:, None]
    rows_idx = np.repeat(np.arange(len(rows)), 256).reshape(len(rows), 256)
    bits[rows_idx[chosen], order[chosen]] ^= 1
    return np.packbits(bits, axis=1)


def random_bank(rng: np.random.Generator, size: int) -> NDArray[np.uint8]:
    return rng.integers(0, 256, (size, 32), dtype=np.uint8)


def clustered_bank(rng: np.random.Generator, size: int, centres: int,
                   max_flips: int) -> NDArray[np.uint8]:
    middle = random_bank(rng, centres)
    out = np.empty((size, 32), np.uint8)
    for start in range(0, size, 250_000):
        stop = min(size, start + 250_000)
        rows = middle[rng.integers(0, centres, stop - start)]
        out[start:stop] = flip_bits(rng, rows, rng.integers(0, max_flips + 1, stop - start))
    return out


def make_bank(name: str, hashes: NDArray[np.uint8], rng: np.random.Generator,
              planted_per_distance: int) -> Bank:
    planted = np.repeat(np.arange(DISTANCE + 1), planted_per_distance)
    rng.shuffle(planted)
    sources = rng.integers(0, len(hashes), len(planted))
    near = flip_bits(rng, hashes[sources], planted)
    far = random_bank(rng, len(planted))
    queries = np.empty((2 * len(planted), 32), np.uint8)
    queries[0::2], queries[1::2] = near, far
    all_sources = np.full(len(queries), -1, np.int64)
    all_sources[0::2] = sources
    all_flips = np.full(len(queries), -1, np.int64)
    all_flips[0::2] = planted
    ids = ID_BASE + ID_STEP * np.arange(len(hashes), dtype=np.int64)
    return Bank(name, ids, hashes, queries, all_sources, all_flips)


# -- measuring ---------------------------------------------------------------------------

def rss_mb() -> float:
    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def time_single(ask: Callable[[int], Answer], count: int, seconds: float,
                result: Result) -> None:
    latencies = []
    began = time.perf_counter()
    for i in range(count):
        start = time.perf_counter()
        result.answers[i] = ask(i)
        latencies.append(time.perf_counter() - start)
        if time.perf_counter() - began > seconds:
            break
    result.single_qps = len(latencies) / (time.perf_counter() - began)
    result.single_n = len(latencies)
    result.p50_ms, result.p99_ms = (float(np.percentile(latencies, p)) * 1e3 for p in (50, 99))


def time_threads(ask: Callable[[int], Any], count: int, seconds: float, threads: int) -> float:
    """Queries per second with `threads` workers each asking one hash at a time."""
    done = [0] * threads
    began = time.perf_counter()

    def work(worker: int) -> None:
        for i in range(worker, count, threads):
            ask(i)
            done[worker] += 1
            if time.perf_counter() - began > seconds:
                return

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(done) / (time.perf_counter() - began)


def time_batches(ask: Callable[[int, int], list[Answer]], count: int, seconds: float,
                 chunk: int, answers: dict[int, Answer] | None = None) -> float:
    done = 0
    began = time.perf_counter()
    while done < count and time.perf_counter() - began < seconds:
        stop = min(count, done + chunk)
        got = ask(done, stop)
        if answers is not None:
            answers.update(zip(range(done, stop), got, strict=True))
        done = stop
    return done / (time.perf_counter() - began)


# -- the three methods -------------------------------------------------------------------

def run_tipline(bank: Bank, seconds: float) -> Result:
    result = Result("Tipline PdqIndex")
    before = rss_mb()
    began = time.perf_counter()
    index = PdqIndex.build(bank.ids, bank.hashes)
    result.build_s = time.perf_counter() - began
    result.rss_mb = rss_mb() - before
    result.arrays_mb = index.memory_bytes() / 1e6
    hexes = [row.tobytes().hex() for row in bank.queries]  # what an API request carries

    def ask(i: int) -> Answer:
        return frozenset(index.query(hash_from_hex(hexes[i]), DISTANCE))

    def ask_batch(workers: int) -> Callable[[int, int], list[Answer]]:
        return lambda lo, hi: [frozenset(m) for m in
                               index.query_batch(bank.queries[lo:hi], DISTANCE, workers=workers)]

    n = len(hexes)
    ask(0)  # compile / warm up
    time_single(ask, n, seconds, result)
    result.single2_qps = time_threads(ask, n, seconds, 2)
    result.batch_qps = time_batches(ask_batch(1), n, seconds, 1024)
    result.batch2_qps = time_batches(ask_batch(2), n, seconds, 1024)
    result.notes += freshness(index, bank)
    result.notes += load_from_rows(bank)
    return result


def freshness(index: PdqIndex, bank: Bank) -> list[str]:
    """How soon an imported hash matches: add() then query() for it."""
    rng = np.random.default_rng(99)
    index.add(np.array([-1]), random_bank(rng, 1))  # compile the buffer's kernel first
    index.query(bytes(32), 0)
    index.remove([-1])
    notes = []
    for count in (1, PdqIndex.BUFFER_LIMIT + 1, 100_000):
        new = random_bank(rng, count)
        new_ids = -1 - np.arange(count, dtype=np.int64)
        began = time.perf_counter()
        index.add(new_ids, new)
        found = index.query(new[-1].tobytes(), 0)
        took = time.perf_counter() - began
        assert (int(new_ids[-1]), 0) in found, "an added hash was not found"
        notes.append(f"add {count:,} + query it: {took * 1e3:.1f} ms")
        index.remove(new_ids)
    return notes


def load_from_rows(bank: Bank) -> list[str]:
    """Start-up from database rows of 32-byte hashes (the SQL fetch itself not included)."""
    rows = [row.tobytes() for row in bank.hashes]
    ids = bank.ids.tolist()
    began = time.perf_counter()
    index = PdqIndex.build(np.array(ids, np.int64), stack_hashes(rows))
    took = time.perf_counter() - began
    del index, rows
    return [f"load from {len(ids):,} (id, 32-byte) rows: {took:.1f} s"]


def run_threatexchange(bank: Bank, seconds: float) -> Result:
    import faiss
    from threatexchange.signal_type.pdq.signal import PdqSignal

    # One OpenMP thread except for the 2-thread batch: with more, faiss's idle OpenMP
    # threads spin and fight any other process for the cores (with one busy process beside
    # it, 1-query q/s at 1 M fell from 683 to 127 with 2 threads, from 820 to 725 with 1).
    faiss.omp_set_num_threads(1)
    result = Result("threatexchange PDQIndex (HMA)")
    index_cls = PdqSignal.get_index_cls()
    result.notes.append(f"class {index_cls.__module__}.{index_cls.__name__}")
    before = rss_mb()
    joined = bank.hashes.tobytes().hex()
    entries = [(joined[i:i + 64], int(entry_id))
               for i, entry_id in zip(range(0, len(joined), 64), bank.ids, strict=True)]
    del joined
    began = time.perf_counter()
    index = index_cls.build(entries)  # what HMA's indexer does
    result.build_s = time.perf_counter() - began
    del entries  # the index keeps its own references to the pairs
    result.rss_mb = rss_mb() - before
    hexes = [row.tobytes().hex() for row in bank.queries]

    def ask(i: int) -> Answer:
        return frozenset((m.metadata, int(m.similarity_info.distance))
                         for m in index.query(hexes[i]))

    def ask_batch(lo: int, hi: int) -> list[Answer]:
        found = index.index.search_with_distance_in_result(hexes[lo:hi], DISTANCE)
        return [frozenset((index.local_id_to_entry[entry][1], int(dist))
                          for entry, _hash, dist in found[h]) for h in hexes[lo:hi]]

    n = len(hexes)
    ask(0)
    time_single(ask, n, seconds, result)
    result.single2_qps = time_threads(ask, n, seconds, 2)
    result.batch_qps = time_batches(ask_batch, n, seconds, 256)
    faiss.omp_set_num_threads(2)
    result.batch2_qps = time_batches(ask_batch, n, seconds, 256)
    faiss.omp_set_num_threads(1)
    return result


@intrinsic
def _popcount(typingctx: Any, word: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return nb_types.int64(nb_types.uint64), codegen


@numba.njit(nogil=True, cache=True)
def _brute(queries: Any, words: Any, max_distance: int) -> Any:
    """Every (query, row, distance) within max_distance; bank tiles stay in cache across queries."""
    hits = []
    for lo in range(0, words.shape[0], 4096):
        hi = min(lo + 4096, words.shape[0])
        for q in range(queries.shape[0]):
            a, b, c, d = queries[q, 0], queries[q, 1], queries[q, 2], queries[q, 3]
            for i in range(lo, hi):
                dist = (_popcount(words[i, 0] ^ a) + _popcount(words[i, 1] ^ b)
                        + _popcount(words[i, 2] ^ c) + _popcount(words[i, 3] ^ d))
                if dist <= max_distance:
                    hits.append((q, i, dist))
    return hits


def run_brute_force(bank: Bank, seconds: float) -> Result:
    result = Result("brute force (numba popcount)")
    words = bank.hashes.view(np.uint64)
    queries = bank.queries.view(np.uint64)
    result.arrays_mb = bank.hashes.nbytes / 1e6

    def search(lo: int, hi: int) -> list[Answer]:
        out: list[set[tuple[int, int]]] = [set() for _ in range(lo, hi)]
        for q, row, dist in _brute(queries[lo:hi], words, DISTANCE):
            out[q].add((int(bank.ids[row]), int(dist)))
        return [frozenset(s) for s in out]

    def search_split(lo: int, hi: int) -> list[Answer]:
        mid = (lo + hi) // 2
        with_thread: list[list[Answer]] = []
        thread = threading.Thread(target=lambda: with_thread.append(search(mid, hi)))
        thread.start()
        first = search(lo, mid)
        thread.join()
        return first + with_thread[0]

    n = len(queries)
    search(0, 1)
    time_single(lambda i: search(i, i + 1)[0], n, seconds, result)
    result.single2_qps = time_threads(lambda i: search(i, i + 1), n, seconds, 2)
    result.batch_qps = time_batches(search, n, seconds, 64, result.answers)
    result.batch2_qps = time_batches(search_split, n, seconds, 128, result.answers)
    return result


# -- checking and printing ---------------------------------------------------------------

def check(bank: Bank, result: Result, truth: dict[int, Answer]) -> dict[str, str]:
    pairs = [(q, i, d) for q, answer in result.answers.items() for i, d in answer]
    wrong = 0
    if pairs:
        qs, found_ids, claimed = (np.array(column, np.int64) for column in zip(*pairs, strict=True))
        rows = (found_ids - ID_BASE) // ID_STEP
        real = np.bitwise_count(bank.hashes.view(np.uint64)[rows]
                                ^ bank.queries.view(np.uint64)[qs]).sum(axis=1)
        wrong = int(((real > DISTANCE) | (real != claimed)).sum())
    planted = [q for q in result.answers if bank.sources[q] >= 0]
    missed = sorted({int(bank.flips[q]) for q in planted
                     if (int(bank.ids[bank.sources[q]]), int(bank.flips[q])) not in result.answers[q]})
    found = sum(1 for q in planted
                if (int(bank.ids[bank.sources[q]]), int(bank.flips[q])) in result.answers[q])
    common = [q for q in result.answers if q in truth]
    same = sum(1 for q in common if result.answers[q] == truth[q])
    recall = f"{found / len(planted):.3f} ({found}/{len(planted)})" if planted else "–"
    if missed:
        recall += f" MISSED at d={missed}"
    return {"recall": recall, "false": str(wrong) if wrong == 0 else f"**{wrong} ERROR**",
            "brute": f"{same}/{len(common)}" if common else "–"}


def fmt(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


HEADER = ("| bank | method | build s | memory MB (arrays / RSS growth) | 1-query q/s 1 thread (n) "
          "| 1-query q/s 2 threads | p50 / p99 ms | batch q/s 1 thread | batch q/s 2 threads "
          "| recall d=0..31 | false | = brute |")


def table_row(bank: Bank, result: Result, checked: dict[str, str]) -> str:
    memory = f"{fmt(result.arrays_mb)} / {fmt(result.rss_mb)}"
    latency = f"{fmt(result.p50_ms, 2)} / {fmt(result.p99_ms, 2)}"
    return (f"| {bank.name} | {result.method} | {fmt(result.build_s, 1)} | {memory} "
            f"| {fmt(result.single_qps)} ({result.single_n}) | {fmt(result.single2_qps)} "
            f"| {latency} | {fmt(result.batch_qps)} | {fmt(result.batch2_qps)} "
            f"| {checked['recall']} | {checked['false']} | {checked['brute']} |")


def versions(with_tx: bool) -> str:
    parts = [f"numpy {np.__version__}", f"numba {numba.__version__}"]
    if with_tx:
        from importlib.metadata import version

        parts += [f"threatexchange {version('threatexchange')}", f"faiss-cpu {version('faiss-cpu')}"]
    return ", ".join(parts)


def threatexchange_missing() -> str | None:
    try:
        import threatexchange.signal_type.pdq.signal  # noqa: F401
    except ImportError as exc:
        return (f"threatexchange column skipped: cannot import it ({exc}); see this file's "
                "docstring for the throwaway venv that provides it")
    return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000",
                        help="random banks, comma-separated sizes (default 1M and 10M)")
    parser.add_argument("--clustered-size", type=int, default=1_000_000,
                        help="size of the clustered bank, 0 for none (default 1M)")
    parser.add_argument("--centres", type=int, default=3000, help="clusters in that bank")
    parser.add_argument("--cluster-flips", type=int, default=16,
                        help="members are 0..this many bits from their centre")
    parser.add_argument("--planted", type=int, default=20,
                        help="planted queries per distance 0..31 (as many random ones again)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound of each loop")
    parser.add_argument("--skip-threatexchange", action="store_true")
    args = parser.parse_args(argv)

    tx_missing = "threatexchange column skipped (--skip-threatexchange)" \
        if args.skip_threatexchange else threatexchange_missing()
    if tx_missing:
        print(tx_missing, flush=True)
    rng = np.random.default_rng(20261)
    plans: list[tuple[str, Callable[[], NDArray[np.uint8]]]] = [
        (f"{int(size):,} random", lambda size=int(size): random_bank(rng, size))
        for size in args.sizes.split(",") if size.strip()]
    if args.clustered_size:
        plans.append((f"{args.clustered_size:,} clustered ({args.centres:,} centres, "
                      f"0–{args.cluster_flips} flips)",
                      lambda: clustered_bank(rng, args.clustered_size, args.centres,
                                             args.cluster_flips)))
    lines, notes = [], []
    for name, make in plans:
        bank = make_bank(name, make(), rng, args.planted)
        print(f"== {name}: {len(bank.queries)} queries", flush=True)
        notes.append(f"{name}: load average before its runs "
                     + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        results = [run_brute_force(bank, args.seconds)]
        print(f"   brute force done: {results[0].single_qps:,.0f} q/s", flush=True)
        results.append(run_tipline(bank, args.seconds))
        print(f"   Tipline done: {results[-1].single_qps:,.0f} q/s", flush=True)
        if not tx_missing:
            results.append(run_threatexchange(bank, args.seconds))
            print(f"   threatexchange done: {results[-1].single_qps:,.0f} q/s", flush=True)
        truth = results[0].answers
        for result in results:
            lines.append(table_row(bank, result, check(bank, result, truth)))
            notes += [f"{name}, {result.method}: {note}" for note in result.notes]
        del bank, results
        gc.collect()

    print()
    print(f"PDQ range search at distance {DISTANCE} ({versions(not tx_missing)})")
    print()
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    print("\n".join(lines))
    print()
    for note in notes + ([tx_missing] if tx_missing else []):
        print(f"* {note}")
    print()
    print_machine(None)


if __name__ == "__main__":
    main()
