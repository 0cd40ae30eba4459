"""Hash-only leads: a partner sends the hashes of a file instead of the file.

Companies that must not (or need not) transfer the material, and survivor-facing apps that
hash a picture on the survivor's own device (as NCMEC's "Take It Down" does), send only
hashes. They are added to an open partner report like files, become the Tipline report's
submitted hashes at finish, and are matched against the banks by the background worker
like the hashes of a stored file.

The JSON body: {"hashes": [{"type": "MD5" | "SHA1" | "SHA256" | "PDQ" | "VPDQ",
"value": hex (not for VPDQ), "quality": 0..100 (PDQ, optional), "frames": [{"frame": n,
"quality": q, "pdq": hex}, ...] (VPDQ only), "label": "the partner's own name for it"}]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tipline.esp.xml import Code, EspError
from tipline.matching.hashfiles import Rejected, canonical_vpdq, check_hex
from tipline.matching.models import HashKind

MAX_PER_REQUEST = 1000
MAX_PER_REPORT = 10_000
MAX_FRAMES = 100_000
MAX_LABEL = 200
TYPES = {"MD5": HashKind.md5, "SHA1": HashKind.sha1, "SHA256": HashKind.sha256,
         "PDQ": HashKind.pdq, "VPDQ": HashKind.vpdq}
_KEYS = {"type", "value", "quality", "frames", "label"}


@dataclass(frozen=True)
class NewHash:
    kind: HashKind
    value: str  # lower-case hex; for vPDQ the SHA-256 of the canonical frames
    quality: int | None = None
    frames: str | None = None
    label: str = ""


def _refuse(detail: str) -> EspError:
    return EspError(Code.validation_failed, f"Validation failed: {detail}")


def read_hashes(body: Any) -> list[NewHash]:
    """Every hash of a request, checked; the first problem refuses the whole request with a
    description that names the hash by its position (hashes[3].value)."""
    if not isinstance(body, dict) or set(body) != {"hashes"}:
        raise _refuse('the body must be an object with one key, "hashes".')
    items = body["hashes"]
    if not isinstance(items, list) or not items:
        raise _refuse("hashes must be a non-empty list.")
    if len(items) > MAX_PER_REQUEST:
        raise _refuse(f"at most {MAX_PER_REQUEST} hashes per request (this one has {len(items)}).")
    return [_one(item, f"hashes[{position}]") for position, item in enumerate(items)]


def _one(item: Any, path: str) -> NewHash:
    if not isinstance(item, dict):
        raise _refuse(f"{path} must be an object.")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise _refuse(f"{path} has unknown key(s): {', '.join(unknown)}.")
    kind = TYPES.get(str(item.get("type", "")).upper())
    if kind is None:
        raise _refuse(f"{path}.type must be one of {', '.join(TYPES)}.")
    label = item.get("label", "")
    if not isinstance(label, str) or len(label) > MAX_LABEL or not label.isprintable():
        raise _refuse(f"{path}.label must be printable text of at most {MAX_LABEL} characters.")
    quality = item.get("quality")
    if quality is not None and (kind is not HashKind.pdq or not _is_quality(quality)):
        raise _refuse(f"{path}.quality is a PDQ hash's quality, a whole number from 0 to 100.")
    if kind is HashKind.vpdq:
        if "value" in item:
            raise _refuse(f"{path}: a VPDQ hash is given by its frames, not a value.")
        value, frames = _frames(item.get("frames"), f"{path}.frames")
        return NewHash(kind, value, frames=frames, label=label)
    if "frames" in item:
        raise _refuse(f"{path}.frames belongs to VPDQ hashes only.")
    text = item.get("value")
    if not isinstance(text, str):
        raise _refuse(f"{path}.value must be the hash in hexadecimal.")
    try:
        value = check_hex(kind, text)
    except Rejected as exc:
        raise _refuse(f"{path}.value: {exc}.") from None
    return NewHash(kind, value, quality=quality, label=label)


def _is_quality(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100


def _frames(frames: Any, path: str) -> tuple[str, str]:
    if not isinstance(frames, list) or not frames:
        raise _refuse(f"{path} must be a non-empty list of {{frame, quality, pdq}} objects.")
    if len(frames) > MAX_FRAMES:
        raise _refuse(f"{path} has more than {MAX_FRAMES} frames.")
    lines = []
    for position, frame in enumerate(frames):
        where = f"{path}[{position}]"
        if not isinstance(frame, dict) or set(frame) != {"frame", "quality", "pdq"}:
            raise _refuse(f"{where} must be an object with frame, quality and pdq.")
        number, quality, pdq = frame["frame"], frame["quality"], frame["pdq"]
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise _refuse(f"{where}.frame must be a frame number (0 or more).")
        if not _is_quality(quality):
            raise _refuse(f"{where}.quality must be a whole number from 0 to 100.")
        if not isinstance(pdq, str):
            raise _refuse(f"{where}.pdq must be a PDQ hash in hexadecimal.")
        lines.append(f"{number},{quality},{pdq}")
    try:
        return canonical_vpdq("\n".join(lines))
    except Rejected as exc:
        raise _refuse(f"{path}: {exc}.") from None
