"""The in-memory PDQ index: every bank entry within Hamming distance d of a hash, exactly.

Multi-index hashing (Norouzi, Punjani and Fleet, 2014). The 256 bits are cut into 11
substrings, each with a table from substring value to entries. If two hashes differ in at
most d bits, with d = 11 * r + a, then one of the first a + 1 substrings differs in at most
r bits or one of the others in at most r - 1 (else the total would exceed d). Probing every
table with each key within that radius therefore finds every match: recall is 1.0 by
construction for every d in 0..32 (r <= 2). Each candidate is checked by popcount over four
uint64 words, and reported only by the first table that can find it, so never twice.

A table is two numpy arrays, a counting sort of entry positions by key, so memory is about
130 bytes per entry at 10 M (no Python object per entry). A small segment keys on fewer
bits than its substring (a superset of the same candidates, still exact), so its tables
stay proportional to its size. Additions go to a buffer scanned by brute force; a full
buffer becomes a segment, and segments of similar size are merged (an LSM tree), so adding
is cheap and a new hash is matchable as soon as `add` returns.

Threads: any number of readers alongside a writer. The whole contents are one immutable
`_State`; a writer builds a new one and swaps the reference (writers queue on a lock), and
a reader takes the reference once per call, so it answers from one consistent state and
never waits. The compiled kernels release the GIL, so readers use every core.

The kernels are compiled on first use (about 10 s of CPU, once: numba caches the machine
code in __pycache__, else in the user's cache directory, or in NUMBA_CACHE_DIR), so build
the index and ask it one query at start-up, before serving.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba import types as nb_types
from numba.extending import intrinsic
from numpy.typing import NDArray

HASH_BYTES = 32
MAX_DISTANCE = 32

# 11 substrings of 23 or 24 bits: enough tables that r = d // 11 stays at 2 up to d = 32
# (few probes per table), wide enough that a 10 M bank leaves about one entry per bucket.
_WIDTHS = (23,) * 8 + (24,) * 3
_STARTS = tuple(sum(_WIDTHS[:i]) for i in range(len(_WIDTHS)))
_TABLES = len(_WIDTHS)
assert MAX_DISTANCE // _TABLES <= 2, "_search probes keys up to 2 bits away, no further"
_MAX_PROBES = 1 + max(_WIDTHS) + math.comb(max(_WIDTHS), 2)
_STARTS_ARRAY = np.array(_STARTS, np.int64)


def _radii(distance: int) -> NDArray[np.int64]:
    """Probe radius of each table for this distance (-1: skip the table); see the docstring."""
    r, a = divmod(distance, _TABLES)
    return np.array([r if t <= a else r - 1 for t in range(_TABLES)], np.int64)


_RADII = tuple(_radii(d) for d in range(MAX_DISTANCE + 1))


def _table_bits(n: int) -> NDArray[np.int64]:
    """Key width of each table for n entries: about two buckets per entry, at most the
    substring; more bits would only add probes and memory."""
    wanted = max(4, math.ceil(math.log2(max(n, 1))) + 1)
    return np.array([min(width, wanted) for width in _WIDTHS], np.int64)


_THREADS = max(1, len(os.sched_getaffinity(0)))  # tables are built in parallel

Ids = NDArray[np.int64]
Words = NDArray[np.uint64]
_F = TypeVar("_F", bound=Callable[..., Any])


# A match: (entry id, distance). Plain tuples, because building a NamedTuple costs 7 times
# as much, and a query near a cluster of near-duplicates can return hundreds of them.
PdqMatch = tuple[int, int]


def _kernel(fn: _F) -> _F:
    """Compile with numba: machine code over arrays, GIL released, cached on disk."""
    return cast(_F, numba.njit(nogil=True, cache=True)(fn))


def _popcount_typer(typingctx: Any, word: Any) -> Any:
    """One POPCNT instruction (numba has no popcount of its own)."""
    del typingctx, word

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        del context, signature
        return builder.ctpop(args[0])

    return nb_types.int64(nb_types.uint64), codegen


_popcount = cast(Callable[[Any], int], intrinsic(_popcount_typer))


@_kernel
def _distance(a: Words, i: int, b: Words, j: int) -> int:
    return (_popcount(a[i, 0] ^ b[j, 0]) + _popcount(a[i, 1] ^ b[j, 1])
            + _popcount(a[i, 2] ^ b[j, 2]) + _popcount(a[i, 3] ^ b[j, 3]))


@_kernel
def _key(words: Words, i: int, start: int, nbits: int) -> np.int64:
    """Bits start .. start + nbits of row i (bit b is bit b % 64 of word b // 64)."""
    w = start >> 6
    off = start & 63
    x = words[i, w] >> np.uint64(off)
    if off + nbits > 64:
        x |= words[i, w + 1] << np.uint64(64 - off)
    return np.int64(x & ((np.uint64(1) << np.uint64(nbits)) - np.uint64(1)))


@_kernel
def _fill_table(words: Words, start: int, nbits: int, offsets: Any, perm: Any) -> None:
    """Counting sort of row positions by key: bucket k is perm[offsets[k]:offsets[k + 1]]."""
    n = words.shape[0]
    for i in range(n):
        offsets[_key(words, i, start, nbits)] += 1
    for k in range(1, offsets.shape[0] - 1):  # offsets[k] = end of bucket k
        offsets[k] += offsets[k - 1]
    offsets[-1] = n
    for i in range(n - 1, -1, -1):  # filled from the end, so offsets[k] ends at its start
        key = _key(words, i, start, nbits)
        offsets[key] -= 1
        perm[offsets[key]] = i


@_kernel
def _grow(rows: Any, size: int) -> Any:
    """Twice the room for (query row, position, distance) results, the first `size` kept."""
    out = np.empty((2 * rows.shape[0], 3), np.int64)
    out[:size] = rows[:size]
    return out


@_kernel
def _probe_keys(key: int, nbits: int, radius: int, out: Any) -> int:
    """Every key within radius (0, 1 or 2) bits of key, into out; answers how many."""
    out[0] = key
    count = 1
    if radius >= 1:
        for b1 in range(nbits):
            out[count] = key ^ (1 << b1)
            count += 1
    if radius >= 2:
        for b1 in range(nbits):
            for b2 in range(b1 + 1, nbits):
                out[count] = key ^ (1 << b1) ^ (1 << b2)
                count += 1
    return count


@_kernel
def _gather(probes: Any, count: int, offsets: Any, perm_t: Any, bounds: Any, cands: Any) -> Any:
    """Positions in the probed buckets, in two loops of independent loads so that many cache
    misses overlap (one fused loop was 10-20% slower at 10 M)."""
    total = 0
    for p in range(count):
        bounds[p, 0] = offsets[probes[p]]
        bounds[p, 1] = offsets[probes[p] + 1]
        total += bounds[p, 1] - bounds[p, 0]
    if total > cands.shape[0]:
        cands = np.empty(2 * total, np.int64)
    c = 0
    for p in range(count):
        for s in range(bounds[p, 0], bounds[p, 1]):
            cands[c] = perm_t[s]
            c += 1
    return cands, total


@_kernel
def _found_before(words: Words, pos: int, table: int, qkeys: Any, radii: Any, starts: Any,
                  bits: Any) -> bool:
    """Whether a table before this one probes this entry's key (then that one reports it)."""
    for u in range(table):
        if radii[u] >= 0 and _popcount(
                np.uint64(_key(words, pos, starts[u], bits[u]) ^ qkeys[u])) <= radii[u]:
            return True
    return False


@_kernel
def _is_dead(dead: Any, pos: int) -> bool:
    at = np.searchsorted(dead, pos)
    return at < dead.shape[0] and bool(dead[at] == pos)


@_kernel
def _search(queries: Words, radii: Any, max_distance: int, words: Words, perm: Any,
            offsets: Any, bases: Any, starts: Any, bits: Any, dead: Any) -> Any:
    """(query row, entry position, distance) of every live entry within max_distance."""
    out = np.empty((16, 3), np.int64)
    found = 0
    qkeys = np.empty(radii.shape[0], np.int64)
    probes = np.empty(_MAX_PROBES, np.int64)
    bounds = np.empty((_MAX_PROBES, 2), np.int64)
    cands = np.empty(1024, np.int64)
    for qi in range(queries.shape[0]):
        for t in range(radii.shape[0]):
            qkeys[t] = _key(queries, qi, starts[t], bits[t])
        for t in range(radii.shape[0]):
            if radii[t] < 0:
                continue
            count = _probe_keys(qkeys[t], bits[t], radii[t], probes)
            cands, total = _gather(probes, count, offsets[bases[t]:], perm[t], bounds, cands)
            for c in range(total):
                pos = cands[c]
                dist = _distance(words, pos, queries, qi)
                if dist > max_distance or _found_before(words, pos, t, qkeys, radii, starts,
                                                        bits):
                    continue
                if dead.shape[0] > 0 and _is_dead(dead, pos):
                    continue
                if found == out.shape[0]:
                    out = _grow(out, found)
                out[found, 0], out[found, 1], out[found, 2] = qi, pos, dist
                found += 1
    return out[:found]


@_kernel
def _scan(queries: Words, max_distance: int, words: Words) -> Any:
    """Brute force over every row, for the buffer of recent additions."""
    out = np.empty((16, 3), np.int64)
    found = 0
    for qi in range(queries.shape[0]):
        for pos in range(words.shape[0]):
            dist = _distance(words, pos, queries, qi)
            if dist <= max_distance:
                if found == out.shape[0]:
                    out = _grow(out, found)
                out[found, 0], out[found, 1], out[found, 2] = qi, pos, dist
                found += 1
    return out[:found]


@dataclass(frozen=True, slots=True)
class _Segment:
    """An immutable multi-index over some entries; removals are marked, not deleted."""

    ids: Ids  # (n,)
    words: Words  # (n, 4): the 32-byte hashes viewed as four uint64
    perm: NDArray[np.uint32]  # (tables, n): positions grouped by key, table after table
    offsets: NDArray[np.uint32]  # every table's bucket starts, concatenated
    bases: NDArray[np.int64]  # where each table's part of offsets begins
    bits: NDArray[np.int64]  # key width of each table (narrower than its substring if small)
    dead: Ids  # sorted positions of removed entries

    @classmethod
    def build(cls, ids: Ids, words: Words) -> _Segment:
        n = len(ids)
        if n >= 2**32 - 1:
            raise ValueError(f"a segment holds fewer than 2**32 entries, got {n}")
        bits = _table_bits(n)
        sizes = (1 << bits) + 1
        bases = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        offsets = np.zeros(int(sizes.sum()), np.uint32)
        perm = np.empty((_TABLES, n), np.uint32)

        def fill(t: int) -> None:
            _fill_table(words, _STARTS[t], int(bits[t]),
                        offsets[bases[t]:bases[t] + sizes[t]], perm[t])

        with ThreadPoolExecutor(_THREADS) as pool:
            list(pool.map(fill, range(_TABLES)))
        segment = cls(ids, words, perm, offsets, bases, bits, np.empty(0, np.int64))
        for array in (ids, words, perm, offsets, bases, bits):
            array.flags.writeable = False
        return segment

    def live(self) -> tuple[Ids, Words]:
        keep = np.ones(len(self.ids), bool)
        keep[self.dead] = False
        return self.ids[keep], _aligned(self.words[keep])

    def live_count(self) -> int:
        return len(self.ids) - len(self.dead)

    def nbytes(self) -> int:
        arrays = (self.ids, self.words, self.perm, self.offsets, self.bases, self.bits, self.dead)
        return sum(a.nbytes for a in arrays)

    def search(self, queries: Words, max_distance: int) -> tuple[Ids, Ids, Ids]:
        found = _search(queries, _RADII[max_distance], max_distance, self.words, self.perm,
                        self.offsets, self.bases, _STARTS_ARRAY, self.bits, self.dead)
        return found[:, 0], self.ids[found[:, 1]], found[:, 2]


@dataclass(frozen=True, slots=True)
class _State:
    segments: tuple[_Segment, ...]
    buffer_ids: Ids  # recent additions, scanned by brute force
    buffer_words: Words


_EMPTY = _State((), np.empty(0, np.int64), np.empty((0, 4), np.uint64))


class PdqIndex:
    """Exact range search over 256-bit PDQ hashes, each carrying an int64 entry id.

    Ids should be unique: adding an id twice keeps both entries, and `remove` drops both.
    """

    BUFFER_LIMIT = 4096  # additions scanned by brute force before they become a segment

    def __init__(self) -> None:
        self._state = _EMPTY
        self._write_lock = threading.Lock()

    @classmethod
    def build(cls, ids: NDArray[Any], hashes: NDArray[np.uint8]) -> PdqIndex:
        """An index over a whole bank, e.g. every PDQ entry read from the database."""
        index = cls()
        ids64, words = _checked_entries(ids, hashes)
        if len(ids64):
            index._state = _State((_Segment.build(ids64, words),), _EMPTY.buffer_ids,
                                  _EMPTY.buffer_words)
        return index

    def __len__(self) -> int:
        state = self._state
        return sum(s.live_count() for s in state.segments) + len(state.buffer_ids)

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays (all of its memory but a few hundred bytes)."""
        state = self._state
        return (sum(s.nbytes() for s in state.segments) + state.buffer_ids.nbytes
                + state.buffer_words.nbytes)

    def add(self, ids: NDArray[Any], hashes: NDArray[np.uint8]) -> None:
        """Add entries; they are matchable as soon as this returns."""
        ids64, words = _checked_entries(ids, hashes)
        with self._write_lock:
            state = self._state
            buffer_ids = np.concatenate((state.buffer_ids, ids64))
            buffer_words = _aligned(np.concatenate((state.buffer_words, words)))
            segments = state.segments
            if len(buffer_ids) > self.BUFFER_LIMIT:
                segments = _merged(segments, _Segment.build(buffer_ids, buffer_words))
                buffer_ids, buffer_words = _EMPTY.buffer_ids, _EMPTY.buffer_words
            self._state = _State(segments, buffer_ids, buffer_words)

    def remove(self, ids: NDArray[Any] | Sequence[int]) -> int:
        """Remove every entry with one of these ids; answers how many were removed."""
        gone = np.unique(np.asarray(ids, np.int64))
        with self._write_lock:
            state = self._state
            removed = 0
            segments: list[_Segment] = []
            for segment in state.segments:
                hit = np.flatnonzero(np.isin(segment.ids, gone))
                marked = replace(segment, dead=np.union1d(segment.dead, hit))
                removed += len(marked.dead) - len(segment.dead)
                if len(marked.dead) * 4 <= len(marked.ids):
                    segments.append(marked)
                elif marked.live_count():  # mostly dead: rebuild it smaller
                    segments.append(_Segment.build(*marked.live()))
            keep = ~np.isin(state.buffer_ids, gone)
            removed += int(len(keep) - keep.sum())
            self._state = _State(tuple(segments), state.buffer_ids[keep],
                                 _aligned(state.buffer_words[keep]))
        return removed

    def query(self, hash32: bytes, max_distance: int) -> list[PdqMatch]:
        """Every entry within max_distance bits of one hash, nearest first (then by id)."""
        if not isinstance(hash32, bytes | bytearray) or len(hash32) != HASH_BYTES:
            raise ValueError(f"a PDQ hash is {HASH_BYTES} bytes, got {_describe(hash32)}")
        queries = np.frombuffer(bytearray(hash32), np.uint64).reshape(1, 4)
        return _search_state(self._state, queries, _checked_distance(max_distance))[0]

    def query_batch(self, hashes: NDArray[np.uint8], max_distance: int, *,
                    workers: int = 1) -> list[list[PdqMatch]]:
        """query() for each row of an (m, 32) uint8 array, on up to `workers` threads."""
        queries = _checked_words(hashes)
        distance = _checked_distance(max_distance)
        state = self._state
        chunks = np.array_split(queries, max(1, min(workers, len(queries) // 64)))
        if len(chunks) == 1:
            return _search_state(state, queries, distance)
        with ThreadPoolExecutor(len(chunks)) as pool:
            parts = pool.map(lambda chunk: _search_state(state, chunk, distance), chunks)
            return [matches for part in parts for matches in part]


def hash_from_hex(text: str) -> bytes:
    """The 32 bytes of a PDQ hash written as 64 hex digits (as ThreatExchange and NCMEC do)."""
    if len(text) != 2 * HASH_BYTES:
        raise ValueError(f"a PDQ hash is {2 * HASH_BYTES} hex digits, got {len(text)}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError("a PDQ hash is written with the hex digits 0-9 and a-f only") from None


def stack_hashes(hashes: Sequence[bytes]) -> NDArray[np.uint8]:
    """An (n, 32) array from 32-byte hashes, e.g. the rows of a database query."""
    lengths = set(map(len, hashes))
    if lengths - {HASH_BYTES}:
        raise ValueError(f"a PDQ hash is {HASH_BYTES} bytes, got lengths {sorted(lengths)}")
    return np.frombuffer(b"".join(hashes), np.uint8).reshape(len(hashes), HASH_BYTES)


def _merged(segments: tuple[_Segment, ...], new: _Segment) -> tuple[_Segment, ...]:
    """Append new, merging neighbours of similar size so a bank of n has O(log n) segments."""
    stack = [*segments, new]
    while len(stack) >= 2 and stack[-1].live_count() * 2 >= stack[-2].live_count():
        newer, older = stack.pop(), stack.pop()
        (ids_a, words_a), (ids_b, words_b) = older.live(), newer.live()
        stack.append(_Segment.build(np.concatenate((ids_a, ids_b)),
                                    _aligned(np.concatenate((words_a, words_b)))))
    return tuple(stack)


def _search_state(state: _State, queries: Words, max_distance: int) -> list[list[PdqMatch]]:
    parts = [segment.search(queries, max_distance) for segment in state.segments]
    if len(state.buffer_ids):
        found = _scan(queries, max_distance, state.buffer_words)
        parts.append((found[:, 0], state.buffer_ids[found[:, 1]], found[:, 2]))
    if not parts:
        return [[] for _ in range(len(queries))]
    qrow, ids, dist = (np.concatenate(column) for column in zip(*parts, strict=True))
    if not len(qrow):  # the usual answer: nothing matched
        return [[] for _ in range(len(queries))]
    order = np.lexsort((ids, dist, qrow))
    bounds = np.searchsorted(qrow[order], np.arange(len(queries) + 1)).tolist()
    ids_list, dist_list = ids[order].tolist(), dist[order].tolist()
    return [list(zip(ids_list[lo:hi], dist_list[lo:hi], strict=True))
            for lo, hi in itertools.pairwise(bounds)]


def _checked_entries(ids: NDArray[Any], hashes: NDArray[np.uint8]) -> tuple[Ids, Words]:
    ids = np.asarray(ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or len(ids) == 0):
        raise ValueError(f"ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    words = _checked_words(hashes)
    if len(ids) != len(words):
        raise ValueError(f"got {len(ids)} ids for {len(words)} hashes")
    return ids.astype(np.int64), words


def _checked_words(hashes: NDArray[np.uint8]) -> Words:
    """Copy (n, 32) uint8 hashes into (n, 4) uint64 words."""
    hashes = np.asarray(hashes)
    if hashes.dtype != np.uint8 or hashes.ndim != 2 or hashes.shape[1] != HASH_BYTES:
        raise ValueError(f"hashes must be a uint8 array of shape (n, {HASH_BYTES}), "
                         f"got {hashes.dtype} {hashes.shape}")
    return _aligned(np.ascontiguousarray(hashes).view(np.uint64))


def _aligned(words: NDArray[Any]) -> Words:
    """A copy starting on a cache line, so that reading one hash touches one line, not two."""
    raw = np.empty(words.size + 8, np.uint64)
    skip = (-raw.ctypes.data % 64) // 8
    out = raw[skip:skip + words.size].reshape(-1, 4)
    out[:] = words.reshape(-1, 4)
    return out


def _checked_distance(max_distance: int) -> int:
    if isinstance(max_distance, bool) or not isinstance(max_distance, int | np.integer) \
            or not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be an integer from 0 to {MAX_DISTANCE}, "
                         f"got {max_distance!r}")
    return int(max_distance)


def _describe(value: object) -> str:
    return f"{len(value)} bytes" if isinstance(value, bytes | bytearray) else type(value).__name__
