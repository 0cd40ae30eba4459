"""MD5 + SHA-1 + SHA-256 in one pass give exactly hashlib's digests, however the bytes arrive."""

from __future__ import annotations

import hashlib
import random

import pytest

from tipline.matching.digests import Digester, Digests, digests_of


def expected(data: bytes) -> Digests:
    return Digests(
        md5=hashlib.md5(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[start:start + size] for start in range(0, len(data), size)]


DATA = random.Random(5).randbytes(3 * 1024 * 1024 + 17)


@pytest.mark.parametrize("chunk", [1 << 20, 65536, 7000, 2047, 1])
def test_same_digests_for_every_chunking(chunk: int) -> None:
    data = DATA if chunk > 1 else DATA[:20_000]  # one byte at a time only on a small file
    assert digests_of(pieces(data, chunk)) == expected(data)


def test_uneven_chunks_and_empty_ones() -> None:
    rng = random.Random(9)
    digester = Digester()
    position = 0
    while position < len(DATA):
        size = rng.choice([0, 1, 13, 4096, 100_000, 1 << 20])
        digester.update(DATA[position:position + size])
        position += size
    assert digester.result() == expected(DATA)


def test_bytearray_and_memoryview_chunks() -> None:
    view = memoryview(DATA)
    digester = Digester()
    digester.update(bytearray(DATA[:1000]))
    digester.update(view[1000:500_000])
    digester.update(view[500_000:].cast("B"))
    assert digester.result() == expected(DATA)


def test_result_can_be_read_midway_and_again() -> None:
    digester = Digester()
    digester.update(DATA[:100])
    assert digester.result() == expected(DATA[:100])
    assert digester.result() == expected(DATA[:100])
    digester.update(DATA[100:])
    assert digester.result() == expected(DATA)


def test_empty_input() -> None:
    assert digests_of([]) == expected(b"")
    assert digests_of([]).md5 == "d41d8cd98f00b204e9800998ecf8427e"


def test_a_digester_told_the_md5_is_known_leaves_it_out_and_takes_the_rest() -> None:
    # The hashing worker's case: the vault took MD5 and SHA-256 on receipt; SHA-256 is
    # taken again to check the bytes, SHA-1 for the banks.
    data = b"an invented evidence file " * 5000
    digester = Digester(md5=False)
    digester.update(data[:7])
    digester.update(data[7:])
    assert digester.result() == Digests(md5="", sha1=hashlib.sha1(data).hexdigest(),
                                        sha256=hashlib.sha256(data).hexdigest(), size=len(data))
