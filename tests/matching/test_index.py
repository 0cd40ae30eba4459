"""The PDQ index answers exactly what brute force answers, at every distance 0..32."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tipline.matching import index as index_module
from tipline.matching.index import (
    MAX_DISTANCE,
    PdqIndex,
    PdqMatch,
    hash_from_hex,
    stack_hashes,
)

DISTANCES = range(MAX_DISTANCE + 1)


class SmallBufferIndex(PdqIndex):
    """Turns additions into segments (and merges them) after a handful of entries."""

    BUFFER_LIMIT = 5


def brute_force(ids: NDArray[np.int64], hashes: NDArray[np.uint8], queries: NDArray[np.uint8],
                max_distance: int) -> list[list[PdqMatch]]:
    """The oracle: numpy popcount against every entry, sorted as the index sorts."""
    bank = hashes.view(np.uint64)
    answers = []
    for query in queries.view(np.uint64):
        dist = np.bitwise_count(bank ^ query).sum(axis=1)
        hit = np.flatnonzero(dist <= max_distance)
        answers.append(sorted(((int(ids[i]), int(dist[i])) for i in hit),
                              key=lambda match: (match[1], match[0])))
    return answers


def flipped(rng: np.random.Generator, row: NDArray[np.uint8], count: int) -> NDArray[np.uint8]:
    bits = np.unpackbits(row)
    bits[rng.choice(256, count, replace=False)] ^= 1
    return np.packbits(bits)


def make_bank(seed: int, size: int, shape: str) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """Random, clustered (near-duplicates of a few centres) or with exact duplicates."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**12, size, replace=False).astype(np.int64) - 10**11
    if shape == "random" or size == 0:
        return ids, rng.integers(0, 256, (size, 32), dtype=np.uint8)
    centres = rng.integers(0, 256, (max(1, size // 20), 32), dtype=np.uint8)
    rows = centres[rng.integers(0, len(centres), size)]
    if shape == "duplicates":
        return ids, rows
    return ids, np.array([flipped(rng, row, int(rng.integers(0, 12))) for row in rows])


def make_queries(seed: int, hashes: NDArray[np.uint8], count: int) -> NDArray[np.uint8]:
    """Bank entries with 0..40 bits flipped, and random hashes."""
    rng = np.random.default_rng(seed + 1)
    out = [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(count // 4 + 1)]
    for _ in range(count if len(hashes) else 0):
        out.append(flipped(rng, hashes[rng.integers(len(hashes))], int(rng.integers(0, 41))))
    return np.array(out, np.uint8)


def assert_same_as_brute_force(index: PdqIndex, ids: NDArray[np.int64],
                               hashes: NDArray[np.uint8], queries: NDArray[np.uint8]) -> None:
    for distance in DISTANCES:
        expected = brute_force(ids, hashes, queries, distance)
        assert index.query_batch(queries, distance) == expected, f"distance {distance}"
        assert index.query(queries[-1].tobytes(), distance) == expected[-1]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), size=st.integers(0, 400),
       shape=st.sampled_from(["random", "clustered", "duplicates"]))
def test_build_answers_like_brute_force(seed: int, size: int, shape: str) -> None:
    ids, hashes = make_bank(seed, size, shape)
    index = PdqIndex.build(ids, hashes)
    assert len(index) == size
    assert_same_as_brute_force(index, ids, hashes, make_queries(seed, hashes, 6))


def test_full_width_tables_answer_like_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small banks key on fewer bits; a 10 M bank uses whole substrings, crossing words."""
    monkeypatch.setattr(index_module, "_table_bits",
                        lambda n: np.array(index_module._WIDTHS, np.int64))
    for shape in ("random", "clustered"):
        ids, hashes = make_bank(7, 1500, shape)
        index = PdqIndex.build(ids, hashes)
        assert list(index._state.segments[0].bits) == list(index_module._WIDTHS)
        assert_same_as_brute_force(index, ids, hashes, make_queries(7, hashes, 40))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32),
       steps=st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.integers(1, 30)),
                      min_size=1, max_size=8))
def test_add_and_remove_answer_like_brute_force(seed: int,
                                                steps: list[tuple[str, int]]) -> None:
    ids, hashes = make_bank(seed, 300, "clustered")
    live = dict.fromkeys(ids[:40].tolist(), True)
    index = SmallBufferIndex.build(ids[:40], hashes[:40])
    used = 40
    rng = np.random.default_rng(seed)
    for action, count in steps:
        if action == "add":
            index.add(ids[used:used + count], hashes[used:used + count])
            live.update(dict.fromkeys(ids[used:used + count].tolist(), True))
            used += count
        else:
            gone = rng.choice(ids[:used], min(count, used), replace=False)
            expected_removed = sum(live.pop(int(i), False) for i in gone)
            assert index.remove(gone) == expected_removed
    keep = np.isin(ids, np.array(list(live), np.int64))
    assert len(index) == int(keep.sum())
    assert_same_as_brute_force(index, ids[keep], hashes[keep],
                               make_queries(seed, hashes[:used], 6))


def test_a_new_hash_is_matchable_when_add_returns() -> None:
    ids, hashes = make_bank(3, 2000, "random")
    index = PdqIndex.build(ids, hashes)
    new = np.random.default_rng(4).integers(0, 256, (1, 32), dtype=np.uint8)
    assert index.query(new[0].tobytes(), 31) == []
    index.add(np.array([42]), new)
    assert index.query(new[0].tobytes(), 31) == [(42, 0)]
    assert index.remove([42, 43]) == 1
    assert index.query(new[0].tobytes(), 31) == []


def test_many_additions_become_merged_segments() -> None:
    ids, hashes = make_bank(5, 400, "random")
    index = SmallBufferIndex()
    for start in range(0, 400, 3):
        index.add(ids[start:start + 3], hashes[start:start + 3])
    sizes = [segment.live_count() for segment in index._state.segments]
    assert len(sizes) <= 8
    assert sizes == sorted(sizes, reverse=True)
    assert len(index) == 400
    assert_same_as_brute_force(index, ids, hashes, make_queries(5, hashes, 10))


def test_removing_most_of_a_segment_rebuilds_it() -> None:
    ids, hashes = make_bank(6, 200, "random")
    index = PdqIndex.build(ids, hashes)
    before = index.memory_bytes()
    assert index.remove(ids[:150]) == 150
    assert len(index) == 50
    assert index.memory_bytes() < before
    assert_same_as_brute_force(index, ids[150:], hashes[150:], make_queries(6, hashes, 10))
    assert index.remove(ids) == 50
    assert len(index) == 0
    assert index._state.segments == ()


def test_empty_index() -> None:
    for index in (PdqIndex(), PdqIndex.build(np.empty(0, np.int64), np.empty((0, 32), np.uint8))):
        assert len(index) == 0
        assert index.memory_bytes() == 0
        assert index.query(bytes(32), 32) == []
        assert index.query_batch(np.zeros((3, 32), np.uint8), 31) == [[], [], []]
        assert index.query_batch(np.empty((0, 32), np.uint8), 31) == []
        assert index.remove([1, 2]) == 0


def test_results_are_nearest_first_then_by_id() -> None:
    base = np.zeros(32, np.uint8)
    one_bit = base.copy()
    one_bit[0] = 1
    index = PdqIndex.build(np.array([9, 3, 5, 1]), np.array([one_bit, base, base, one_bit]))
    assert index.query(base.tobytes(), 1) == [(3, 0), (5, 0), (1, 1), (9, 1)]
    assert index.query(base.tobytes(), 0) == [(3, 0), (5, 0)]


def test_batches_on_several_threads_answer_in_order() -> None:
    ids, hashes = make_bank(8, 3000, "clustered")
    index = PdqIndex.build(ids, hashes)
    queries = make_queries(8, hashes, 400)
    assert index.query_batch(queries, 31, workers=2) == brute_force(ids, hashes, queries, 31)


def test_readers_see_a_whole_state_while_a_writer_changes_the_index() -> None:
    ids, hashes = make_bank(9, 3000, "random")
    index = SmallBufferIndex.build(ids[:1000], hashes[:1000])
    kept = hashes[:1000:50]
    expected = [[(int(i), 0)] for i in ids[:1000:50]]
    failures: list[object] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            got = index.query_batch(kept, 0)
            if got != expected:
                failures.append(got)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for start in range(1000, 3000, 100):
            index.add(ids[start:start + 100], hashes[start:start + 100])
            index.remove(ids[start:start + 50])
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert failures == []
    assert len(index) == 2000


@pytest.mark.parametrize("bad", [bytes(31), bytes(33), "00" * 32, bytearray(3), None])
def test_a_query_hash_must_be_32_bytes(bad: object) -> None:
    with pytest.raises(ValueError, match="a PDQ hash is 32 bytes"):
        PdqIndex().query(bad, 31)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 33, 256, 1.5, True, "31"])
def test_the_distance_must_be_0_to_32(bad: object) -> None:
    index = PdqIndex.build(np.array([1]), np.zeros((1, 32), np.uint8))
    with pytest.raises(ValueError, match="max_distance must be an integer from 0 to 32"):
        index.query(bytes(32), bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_distance must be an integer from 0 to 32"):
        index.query_batch(np.zeros((1, 32), np.uint8), bad)  # type: ignore[arg-type]


def test_entries_must_be_int_ids_and_uint8_rows_of_32() -> None:
    rows = np.zeros((2, 32), np.uint8)
    with pytest.raises(ValueError, match=r"shape \(n, 32\)"):
        PdqIndex.build(np.array([1, 2]), np.zeros((2, 31), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(n, 32\)"):
        PdqIndex.build(np.array([1, 2]), rows.astype(np.int64))
    with pytest.raises(ValueError, match="1-D integer array"):
        PdqIndex.build(np.array([1.0, 2.0]), rows)
    with pytest.raises(ValueError, match="got 3 ids for 2 hashes"):
        PdqIndex().add(np.array([1, 2, 3]), rows)
    with pytest.raises(ValueError, match=r"shape \(n, 32\)"):
        PdqIndex().query_batch(np.zeros(32, np.uint8), 31)


def test_hex_and_bytes_helpers() -> None:
    text = "f" * 60 + "0a1B"
    assert hash_from_hex(text) == bytes.fromhex(text)
    with pytest.raises(ValueError, match="64 hex digits, got 63"):
        hash_from_hex(text[:-1])
    with pytest.raises(ValueError, match="hex digits 0-9 and a-f"):
        hash_from_hex("g" * 64)
    stacked = stack_hashes([bytes(32), b"\xff" * 32])
    assert stacked.shape == (2, 32)
    assert stacked[1].tolist() == [255] * 32
    assert stack_hashes([]).shape == (0, 32)
    with pytest.raises(ValueError, match=r"32 bytes, got lengths \[31, 32\]"):
        stack_hashes([bytes(32), bytes(31)])
