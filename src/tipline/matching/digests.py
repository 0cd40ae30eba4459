"""MD5, SHA-1 and SHA-256 of one stream in a single pass.

MD5 and SHA-1 are what CSAM hash lists (NCMEC, Project VIC, IWF) are keyed on; SHA-256
is the evidence-integrity hash. None of them is used for security here, so MD5 and SHA-1
are created with usedforsecurity=False (they keep working on FIPS-mode OpenSSL).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Digests:
    """Lower-case hex digests of the same bytes, and how many bytes there were."""

    md5: str
    sha1: str
    sha256: str
    size: int


class Digester:
    """Feed chunks with `update` as they arrive; `result` can be asked for at any time.
    With md5=False no MD5 is taken (its digest reads ""), for a caller that has it already."""

    def __init__(self, *, md5: bool = True) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        # hashlib releases the GIL for chunks over 2 KiB, so other threads keep running.
        if self._md5 is not None:
            self._md5.update(data)
        self._sha1.update(data)
        self._sha256.update(data)
        self._size += memoryview(data).nbytes

    def result(self) -> Digests:
        return Digests(
            md5=self._md5.hexdigest() if self._md5 is not None else "",
            sha1=self._sha1.hexdigest(),
            sha256=self._sha256.hexdigest(),
            size=self._size,
        )


def digests_of(chunks: Iterable[bytes]) -> Digests:
    digester = Digester()
    for chunk in chunks:
        digester.update(chunk)
    return digester.result()
