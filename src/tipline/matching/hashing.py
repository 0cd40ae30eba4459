"""The known-content hashes of one stored file: SHA-1 (and SHA-256 again, to check the
vault), PDQ with its quality for images, vPDQ for videos. MD5 is not taken again: the
vault took it with the SHA-256 when the file was received, and a matching SHA-256 says
the bytes are the same.

This runs in the hashing worker's child processes (tipline.matching.worker): decoding
and hashing are CPU work that must not hold the server's GIL. A child gets the blob's
name and wrapped key, never the plaintext or a key in the clear: it loads the vault keys
from their files once (`init_child`) and decrypts the blob itself, in memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from tipline import crypto
from tipline.evidence import preview
from tipline.evidence.blobstore import BlobStore
from tipline.matching.digests import Digester
from tipline.matching.perceptual import ImageTooLarge, VpdqFrame, pdq_from_bytes, vpdq_from_chunks

# An image file larger than this is not decoded for PDQ (its digests are still taken): the
# pixel cap already refuses anything bigger, and the whole file is held in memory to decode.
MAX_IMAGE_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class StoredFile:
    """What a child needs to read one blob (the wrapped key is useless without the vault keys)."""

    blob_name: str
    wrapped_key: bytes
    media_type: str
    sha256: str
    size: int


@dataclass(frozen=True)
class FileHashes:
    sha1: str
    sha256: str
    size: int
    perceptual: str  # "pdq", "vpdq" or "" (not an image or a video)
    pdq: str | None = None
    pdq_quality: int | None = None
    vpdq_frames: str | None = None  # "frame_number,quality,pdq_hex" lines, as bank entries
    note: str = ""  # why an image or video has no perceptual hash
    problem: str = ""  # set when the plaintext is not what the vault received: an alarm

    @property
    def state(self) -> str:
        """The evidence row's hash_state once these are stored."""
        if self.problem:
            return "failed"
        return "done" if self.perceptual else "none"

    def custody_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"hashes": self.kinds(), "sha1": self.sha1}
        if self.pdq is not None:
            details["pdq_quality"] = self.pdq_quality
        if self.vpdq_frames is not None:
            details["vpdq_frames"] = self.vpdq_frames.count("\n") + 1
        if self.note:
            details["note"] = self.note
        return details

    def kinds(self) -> list[str]:
        found = ["md5", "sha1", "sha256"]
        if self.pdq is not None:
            found.append("pdq")
        if self.vpdq_frames is not None:
            found.append("vpdq")
        return found


def perceptual_kind(media_type: str) -> str:
    if media_type.startswith("image/"):
        return "pdq"
    if media_type.startswith("video/"):
        return "vpdq"
    return ""


def hash_stored_file(store: BlobStore, keys: crypto.Keys, item: StoredFile, *,
                     max_pixels: int = preview.MAX_PIXELS) -> FileHashes:
    """Decrypt the blob once, digesting it on the way, and hash its pixels or frames.

    Nothing perceptual is stored for a file whose plaintext differs from what was received
    (`problem` says how); the caller raises the alarm."""
    kind = perceptual_kind(item.media_type)
    digester = Digester(md5=False)
    image: bytearray | None = bytearray() if kind == "pdq" else None
    frames: list[VpdqFrame] | None = None
    try:
        # What evidence.read_plaintext does, without an ORM row (no mappers in a child).
        chunks = _digested(store.open_plaintext(keys, item.blob_name, item.wrapped_key), digester)
        if kind == "vpdq":
            frames = vpdq_from_chunks(chunks)
        else:
            for chunk in chunks:
                if image is not None:
                    image += chunk
                    if len(image) > MAX_IMAGE_BYTES:
                        image = None
    except crypto.DecryptionError as exc:
        return _alarm(digester, kind, f"the blob does not decrypt: {exc}")
    except FileNotFoundError:
        return _alarm(digester, kind, "the blob file is missing")
    digests = digester.result()
    if digests.sha256 != item.sha256 or digests.size != item.size:
        return _alarm(digester, kind, "the plaintext differs from what was received "
                      f"(SHA-256 {digests.sha256}, {digests.size} bytes)")
    hashes = FileHashes(sha1=digests.sha1, sha256=digests.sha256, size=digests.size, perceptual=kind)
    if kind == "pdq":
        return _with_pdq(hashes, image, max_pixels)
    if kind == "vpdq":
        if not frames:
            return replace(hashes, note="not a video FFmpeg can read")
        return replace(hashes, vpdq_frames=format_frames(frames))
    return hashes


def _with_pdq(hashes: FileHashes, image: bytearray | None, max_pixels: int) -> FileHashes:
    if image is None:
        return replace(hashes, note=f"larger than {MAX_IMAGE_BYTES} bytes")
    try:
        with warnings.catch_warnings():
            # Above Pillow's limit it warns; a bomb is refused, never decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            result = pdq_from_bytes(bytes(image), max_pixels=max_pixels)
    except ImageTooLarge:
        return replace(hashes, note="too many pixels to decode")
    if result is None:
        return replace(hashes, note="not an image we can decode")
    return replace(hashes, pdq=result.hash_hex, pdq_quality=result.quality)


def _alarm(digester: Digester, kind: str, problem: str) -> FileHashes:
    digests = digester.result()
    return FileHashes(sha1=digests.sha1, sha256=digests.sha256, size=digests.size,
                      perceptual=kind, problem=problem)


def _digested(chunks: Iterable[bytes], digester: Digester) -> Iterator[bytes]:
    for chunk in chunks:
        digester.update(chunk)
        yield chunk


def format_frames(frames: Iterable[VpdqFrame]) -> str:
    """vPDQ frames as bank entries store them: "frame_number,quality,pdq_hex", one a line,
    by frame number."""
    ordered = sorted(frames, key=lambda frame: frame.frame_number)
    return "\n".join(f"{f.frame_number},{f.quality},{f.hash_hex}" for f in ordered)


def parse_frames(text: str) -> list[VpdqFrame]:
    """The frames of a stored vPDQ hash (timestamps are not kept; matching ignores them)."""
    frames = []
    for line in text.split("\n"):
        number, quality, hex_hash = line.strip().split(",")
        frames.append(VpdqFrame(hash=bytes.fromhex(hex_hash), quality=int(quality),
                                frame_number=int(number), timestamp=0.0))
    return frames


# ---- in a child process ----------------------------------------------------------------

_CHILD: dict[str, Any] = {}


def init_child(vault_dir: str, keys_dir: str) -> None:
    """Process-pool initializer: the vault and its keys, loaded once per child."""
    _CHILD["store"] = BlobStore(Path(vault_dir))
    _CHILD["keys"] = crypto.load_keys(Path(keys_dir))


def hash_in_child(item: StoredFile) -> FileHashes:
    return hash_stored_file(_CHILD["store"], _CHILD["keys"], item)
