"""Perceptual hashes as the shared banks compute them: PDQ for images, vPDQ for videos.

PDQ is computed by Meta's C++ code (the `pdqhash` package, as python-threatexchange and
HMA do) on the full-resolution decode, so a hash made here is the same bytes HMA would
make from the same file. Conventions, each chosen to agree with banks made elsewhere:

* EXIF orientation is *not* applied: the hash is of the stored pixel grid, as in the C++
  reference, Meta's Python reference, python-threatexchange and HMA. A sideways phone
  photo therefore hashes sideways, as it does in every bank.
* Animated images (GIF, APNG, WebP) are hashed by their first frame.
* RGB, RGBA and L are hashed exactly as python-threatexchange does (alpha is ignored,
  the colour under transparent pixels counts). Where python-threatexchange misreads a
  mode (palette indices taken as grey, CMYK taken as RGB, 16-bit grey refused), the
  image is converted to RGB first, as the C++ and Python references do; 16-bit grey is
  scaled to 8 bits (Pillow's own conversion would clip it to white).
* Quality below 50 means "do not match on this hash" (python-threatexchange and HMA
  discard such hashes); the hash is still returned so that the record is complete.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash
from numpy.typing import NDArray
from PIL import Image

from tipline.errors import TooLarge

PDQ_HASH_BYTES = 32
# Meta's recommended starting points, hard-coded by HMA and python-threatexchange.
PDQ_MATCH_DISTANCE = 31
PDQ_QUALITY_THRESHOLD = 50
# vPDQ reference README: a bank video matches when 80 % of its frames are found in the
# query; 0 % of the query need match, so a known video padded with other footage still
# matches.
VPDQ_TARGET_MATCH_PERCENT = 80.0
VPDQ_QUERY_MATCH_PERCENT = 0.0

# Formats we decode for hashing. Pillow can open more (EPS would run Ghostscript), and
# every decoder is attack surface for hostile uploads. ("JPEG" also opens the camera
# JPEGs that Pillow calls MPO.)
PDQ_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
# Used when Pillow's own limit is switched off (MAX_IMAGE_PIXELS = None).
FALLBACK_MAX_PIXELS = 89_478_485

_GREY_MODES = frozenset({"1", "L", "LA", "La", "F"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_RGB_MODES = frozenset({"RGB", "RGBA", "RGBX"})
# What a broken file of a known format raises while it is opened or decoded.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError)


class ImageTooLarge(TooLarge):
    """The image declares more pixels than we are willing to decode (a decompression bomb)."""


@dataclass(frozen=True)
class PdqResult:
    hash: bytes
    quality: int

    @property
    def hash_hex(self) -> str:
        """64 lower-case hex digits, most significant bit first (ThreatExchange, NCMEC)."""
        return self.hash.hex()

    @property
    def matchable(self) -> bool:
        return self.quality >= PDQ_QUALITY_THRESHOLD


def pdq_from_bytes(data: bytes, *, max_pixels: int | None = None) -> PdqResult | None:
    """PDQ of an image file's bytes; None when the bytes are not an image we can decode.

    Raises ImageTooLarge when the image declares more pixels than Pillow's
    MAX_IMAGE_PIXELS or `max_pixels` (which can only lower that limit), before anything
    is decoded.
    """
    limit = min(Image.MAX_IMAGE_PIXELS or FALLBACK_MAX_PIXELS, max_pixels or FALLBACK_MAX_PIXELS)
    try:
        image = Image.open(io.BytesIO(data), formats=PDQ_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses above twice its limit and warns above it; when warnings are
        # errors (as in tests) the warning arrives here as an exception.
        raise ImageTooLarge("The image has too many pixels to be hashed.") from exc
    except _DECODE_ERRORS:
        return None
    with image:
        width, height = image.size
        if width * height > limit:
            raise ImageTooLarge(
                f"The image is {width}×{height} pixels; at most {limit} pixels can be hashed."
            )
        try:
            image.load()
        except _DECODE_ERRORS:
            return None
        return pdq_from_image(image)


def pdq_from_image(image: Image.Image) -> PdqResult:
    """PDQ of a decoded Pillow image (its current frame), at the size it has."""
    bits, quality = pdqhash.compute(_pdq_pixels(image))
    packed = np.packbits(np.asarray(bits, dtype=np.uint8))
    return PdqResult(hash=packed.tobytes(), quality=int(quality))


def _pdq_pixels(image: Image.Image) -> NDArray[np.uint8]:
    """An H×W×3 (or ×4, alpha ignored) uint8 array, the input `pdqhash.compute` expects."""
    mode = image.mode
    if mode in _RGB_MODES:
        return np.asarray(image)
    if mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image).astype(np.int64)
        return _grey_as_rgb((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))
    if mode in _GREY_MODES:
        grey = image if mode == "L" else image.convert("L")
        return _grey_as_rgb(np.asarray(grey))
    return np.asarray(image.convert("RGB"))


def _grey_as_rgb(grey: NDArray[np.uint8]) -> NDArray[np.uint8]:
    # Three views of one plane (stride 0), not a copy: pdqhash reads the channels and
    # computes the same luma as from python-threatexchange's stacked copy.
    grey = np.ascontiguousarray(grey)
    return np.lib.stride_tricks.as_strided(
        grey, shape=(*grey.shape, 3), strides=(*grey.strides, 0), writeable=False
    )


def pdq_distance(first: bytes, second: bytes) -> int:
    """Hamming distance between two 32-byte PDQ hashes."""
    if len(first) != PDQ_HASH_BYTES or len(second) != PDQ_HASH_BYTES:
        raise ValueError("a PDQ hash is 32 bytes")
    return (int.from_bytes(first, "big") ^ int.from_bytes(second, "big")).bit_count()


def parse_pdq_hex(text: str) -> bytes:
    """A PDQ hash from its 64-hex-digit form (as banks and exchanges ship it)."""
    cleaned = text.strip().lower()
    if len(cleaned) != 2 * PDQ_HASH_BYTES or not all(c in "0123456789abcdef" for c in cleaned):
        raise ValueError("a PDQ hash is 64 hexadecimal digits")
    return bytes.fromhex(cleaned)


# ---- vPDQ ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VpdqFrame:
    """One sampled frame of a video: its PDQ hash, quality, frame number and time (s)."""

    hash: bytes
    quality: int
    frame_number: int
    timestamp: float

    @property
    def hash_hex(self) -> str:
        return self.hash.hex()


def vpdq_from_path(
    path: Path | str, *, seconds_per_hash: float = 1.0, threads: int = 1
) -> list[VpdqFrame] | None:
    """vPDQ of a video file: one PDQ per `seconds_per_hash` (0 = every frame).

    None when FFmpeg cannot read it as a video. `threads` defaults to one so that the cost
    is one core, as the rest of hashing; vpdq's own default (0) takes every core.
    """
    import vpdq  # deferred: a compiled extension that loads the FFmpeg libraries

    if not Path(path).is_file():
        raise FileNotFoundError(path)
    try:
        features = vpdq.computeHash(
            str(path), seconds_per_hash=seconds_per_hash, thread_count=threads
        )
    except Exception:  # noqa: BLE001 - vpdq reports an unreadable video as a bare Exception
        return None
    return [
        VpdqFrame(
            hash=bytes.fromhex(str(feature.hex)),
            quality=int(feature.quality),
            frame_number=int(feature.frame_number),
            timestamp=float(feature.timestamp),
        )
        for feature in features
    ]


def vpdq_from_chunks(
    chunks: Iterable[bytes], *, seconds_per_hash: float = 1.0, threads: int = 1
) -> list[VpdqFrame] | None:
    """vPDQ of a video given as plaintext chunks (e.g. BlobStore.open_plaintext).

    FFmpeg wants a path, and evidence plaintext must never touch disk, so the chunks go
    into an anonymous in-memory file (memfd, Linux) that FFmpeg opens by its /proc path.
    """
    fd = os.memfd_create("tipline-vpdq", os.MFD_CLOEXEC)
    try:
        with os.fdopen(fd, "wb", closefd=False) as memory_file:
            for chunk in chunks:
                memory_file.write(chunk)
        return vpdq_from_path(
            f"/proc/self/fd/{fd}", seconds_per_hash=seconds_per_hash, threads=threads
        )
    finally:
        os.close(fd)


@dataclass(frozen=True)
class VpdqComparison:
    """Shares (0-100) of the distinct, good-quality frames of each video found in the other."""

    query_match_percent: float
    target_match_percent: float

    def is_match(
        self,
        *,
        target_threshold: float = VPDQ_TARGET_MATCH_PERCENT,
        query_threshold: float = VPDQ_QUERY_MATCH_PERCENT,
    ) -> bool:
        # At least one frame in common, even when both thresholds are set to 0.
        return (
            self.target_match_percent >= target_threshold
            and self.query_match_percent >= query_threshold
            and self.target_match_percent > 0.0
        )


def compare_vpdq(
    query: Sequence[VpdqFrame],
    target: Sequence[VpdqFrame],
    *,
    distance: int = PDQ_MATCH_DISTANCE,
    quality: int = PDQ_QUALITY_THRESHOLD,
) -> VpdqComparison:
    """The vPDQ reference comparison: videos as bags of distinct frame hashes; frames below
    `quality` are ignored; a frame is matched when any frame of the other video is within
    `distance` bits. The query is the new upload, the target the bank entry."""
    query_hashes = _distinct_good_hashes(query, quality)
    target_hashes = _distinct_good_hashes(target, quality)
    if len(query_hashes) == 0 or len(target_hashes) == 0:
        return VpdqComparison(query_match_percent=0.0, target_match_percent=0.0)
    query_found = np.zeros(len(query_hashes), dtype=bool)
    target_found = np.zeros(len(target_hashes), dtype=bool)
    # Rows in blocks so a long video against a long video stays within a few MB.
    block = max(1, 1_000_000 // len(target_hashes))
    for start in range(0, len(query_hashes), block):
        rows = query_hashes[start : start + block]
        distances = np.bitwise_count(rows[:, None, :] ^ target_hashes[None, :, :]).sum(axis=2)
        close = distances <= distance
        query_found[start : start + block] = close.any(axis=1)
        target_found |= close.any(axis=0)
    return VpdqComparison(
        query_match_percent=100.0 * float(query_found.mean()),
        target_match_percent=100.0 * float(target_found.mean()),
    )


def _distinct_good_hashes(frames: Sequence[VpdqFrame], quality: int) -> NDArray[np.uint64]:
    distinct = list(dict.fromkeys(frame.hash for frame in frames if frame.quality >= quality))
    if not distinct:
        return np.zeros((0, 4), dtype=np.uint64)
    return np.frombuffer(b"".join(distinct), dtype=np.uint64).reshape(-1, 4)
