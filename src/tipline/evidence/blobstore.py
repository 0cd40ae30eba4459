"""Encrypted blob files on the local filesystem.

A blob is written under vault/tmp while it streams in and renamed into vault/blobs only
when it is complete, so a crash leaves either a temporary file (swept on start) or a
whole blob (which `vault verify` pairs with its row or names as an orphan).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tipline import crypto
from tipline.errors import InvalidInput, TooLarge
from tipline.evidence.sniff import sniff_media_type
from tipline.settings import DEFAULT_ALLOWED_TYPES

# Half-written files younger than this may still be arriving.
TMP_GRACE_SECONDS = 15 * 60


@dataclass(frozen=True)
class StagedBlob:
    """A blob safely on disk (encrypted) but not yet recorded in the database."""

    name: str
    path: Path
    wrapped_key: bytes
    size: int
    media_type: str
    sha256: str
    md5: str
    original_name: str


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"

    def ensure(self) -> None:
        for folder in (self.root, self.blobs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)

    def path_for(self, name: str) -> Path:
        return self.blobs / name[:2] / name

    def sweep_tmp(self, older_than_seconds: float = TMP_GRACE_SECONDS) -> int:
        """Remove half-written blobs left by a crash; returns how many. Young files may be
        uploads still arriving in another process that shares this vault, so they stay."""
        removed = 0
        cutoff = time.time() - older_than_seconds
        if self.tmp.exists():
            for leftover in self.tmp.glob("*.part"):
                try:
                    if leftover.stat().st_mtime < cutoff:
                        leftover.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def all_names(self) -> Iterator[str]:
        if not self.blobs.exists():
            return
        for sub in sorted(self.blobs.iterdir()):
            if sub.is_dir():
                for blob in sorted(sub.iterdir()):
                    yield blob.name

    def delete(self, name: str) -> None:
        self.path_for(name).unlink(missing_ok=True)

    def open_plaintext(self, keys: crypto.Keys, name: str, wrapped_key: bytes) -> Iterator[bytes]:
        data_key = crypto.unwrap_key(keys, wrapped_key)
        with self.path_for(name).open("rb") as handle:
            yield from crypto.decrypt_stream(data_key, handle)

    def writer(
        self,
        keys: crypto.Keys,
        *,
        original_name: str,
        max_bytes: int,
        allowed_types: tuple[str, ...],
    ) -> BlobWriter:
        return BlobWriter(self, keys, original_name=original_name, max_bytes=max_bytes,
                          allowed_types=allowed_types)


SNIFF_BYTES = 512


def _fsync_directory(path: Path) -> None:
    """Make a rename or a new entry survive power loss, not only a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Streams one file: hashes the plaintext, encrypts it, and writes only ciphertext."""

    def __init__(
        self,
        store: BlobStore,
        keys: crypto.Keys,
        *,
        original_name: str,
        max_bytes: int,
        allowed_types: tuple[str, ...],
    ) -> None:
        self.store = store
        self.original_name = original_name
        self.max_bytes = max_bytes
        self.allowed_types = allowed_types
        self.name = secrets.token_hex(16)
        self._data_key = crypto.new_data_key()
        self._wrapped = crypto.wrap_key(keys, self._data_key)
        self._encryptor = crypto.ChunkEncryptor(self._data_key)
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0
        self._head = bytearray()
        self._media_type: str | None = None
        self._tmp_path = store.tmp / f"{self.name}.part"
        self._handle = self._tmp_path.open("xb")
        self._handle.write(self._encryptor.header())

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.max_bytes:
            raise TooLarge(
                f"“{self.original_name}” is larger than the limit of "
                f"{self.max_bytes // (1024 * 1024)} MB",
                field="files",
            )
        if self._media_type is None:
            self._head += data[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                self._check_type()
        self._sha256.update(data)
        self._md5.update(data)
        self._handle.write(self._encryptor.update(data))

    def _check_type(self) -> None:
        media_type = sniff_media_type(bytes(self._head), self.original_name)
        if "*" not in self.allowed_types and media_type not in self.allowed_types:
            accepted = ("screenshots and pictures (PNG, JPEG, GIF, WebP), PDF, plain text and MP4 video"
                        if set(self.allowed_types) == set(DEFAULT_ALLOWED_TYPES)
                        else ", ".join(self.allowed_types))
            raise InvalidInput(
                f"“{self.original_name}” is a file of type {media_type}, which is not accepted. "
                f"Accepted: {accepted}.",
                field="files",
            )
        self._media_type = media_type

    def finish(self) -> StagedBlob:
        if self._size == 0:
            raise InvalidInput(f"“{self.original_name}” is empty", field="files")
        if self._media_type is None:
            self._check_type()
        assert self._media_type is not None
        self._handle.write(self._encryptor.finish())
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        final = self.store.path_for(self.name)
        if not final.parent.exists():
            final.parent.mkdir(exist_ok=True)
            _fsync_directory(self.store.blobs)
        self._tmp_path.rename(final)
        _fsync_directory(final.parent)
        return StagedBlob(
            name=self.name, path=final, wrapped_key=self._wrapped, size=self._size,
            media_type=self._media_type, sha256=self._sha256.hexdigest(),
            md5=self._md5.hexdigest(), original_name=self.original_name,
        )

    def abort(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self._tmp_path.unlink(missing_ok=True)
