"""A canonical ZIP encoding: stored (uncompressed) entries, fixed timestamps, no extra
fields, no comments, written byte for byte the same by every Python on every platform.

A package verifies only if its bytes are exactly the canonical encoding of its entries, so
a change to any byte is caught: either an entry's content changes (its digest or the
signature fails) or the structure around it does (the re-encoding differs).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

_DOS_DATE_1980_01_01 = (0 << 9) | (1 << 5) | 1
_VERSION = 20
_LIMIT = 0xFFFFFFFF
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


class ArchiveError(Exception):
    """The bytes are not a readable canonical archive."""


def _check_name(name: str) -> bytes:
    if not name or set(name) - _NAME_CHARS or name.startswith("/") or ".." in name.split("/"):
        raise ArchiveError(f"entry name {name!r} is not allowed")
    return name.encode("ascii")


def encode(entries: list[tuple[str, bytes]]) -> bytes:
    """The canonical archive of these entries, in this order."""
    out = io.BytesIO()
    central = io.BytesIO()
    for name, data in entries:
        raw_name = _check_name(name)
        offset = out.tell()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        if len(data) >= _LIMIT or offset >= _LIMIT:
            raise ArchiveError("the package is too large for a ZIP file without ZIP64")
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, _VERSION, 0, 0, 0,
                              _DOS_DATE_1980_01_01, crc, len(data), len(data), len(raw_name), 0))
        out.write(raw_name)
        out.write(data)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, _VERSION, _VERSION, 0, 0, 0,
                                  _DOS_DATE_1980_01_01, crc, len(data), len(data), len(raw_name),
                                  0, 0, 0, 0, 0, offset))
        central.write(raw_name)
    directory = central.getvalue()
    start = out.tell()
    out.write(directory)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                          len(directory), start, 0))
    return out.getvalue()


def decode(data: bytes) -> list[tuple[str, bytes]]:
    """The entries of a canonical archive, in order. Raises ArchiveError if the bytes are
    not a readable ZIP file or not exactly the canonical encoding of what they hold."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = []
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
                    raise ArchiveError(f"entry {info.filename!r} is not stored the canonical way")
                entries.append((info.filename, archive.read(info)))
    except ArchiveError:
        raise
    except Exception as exc:  # any failure to parse means "not readable"
        raise ArchiveError(f"not a readable ZIP file ({type(exc).__name__}: {exc})") from exc
    names = [name for name, _data in entries]
    if len(set(names)) != len(names):
        raise ArchiveError("the archive names an entry twice")
    if encode(entries) != data:
        raise ArchiveError("the archive's structure was altered (its bytes are not the canonical encoding of its entries)")
    return entries
