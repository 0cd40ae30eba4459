"""Project VIC (VICS) JSON hash sets, read as a stream.

VICS files hold 10^5-10^6 Media records, in one of two envelopes (domain.md 2.4-2.5):
  hash-set form  {"@odata.context": ".../2.0.xml/Default/$metadata#Media", "value": [Media…]}
  case form      {"@odata.context": ".../2.0.xml/US/$metadata#Cases",
                  "value": [{"CaseID": …, "Media": [Media…]}]}
and 1.x files say "odata.metadata": ".../1.3.xml#Media" instead. The 1.x (DHS/Autopsy)
numbering swapped 0 and 5: legacy 0 is "uncategorised" and legacy 5 "non-pertinent", where
2.0 has 0 non-pertinent and 5 (or null) uncategorised. Entries store the 2.0 meaning, and a
record without a category never becomes 0.

`JsonStream` walks the envelope and the arrays token by token and decodes each Media record
whole with the standard library's `raw_decode`, so memory stays at one record."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from tipline.matching.hashfiles import (
    LABEL_LENGTH,
    Candidate,
    ImportFileError,
    Item,
    Reader,
    Rejected,
    check_hex,
)
from tipline.matching.models import CategoryScheme, HashKind

MAX_VALUE_CHARS = 64 * 2**20  # one Media record; real ones are a few kB
CONTEXT_KEYS = ("@odata.context", "odata.metadata")
_CONTEXT = re.compile(r"/(\d+)(?:\.\d+)*\.xml(?:/([^/#$]+))?", re.IGNORECASE)
_US_PROFILES = {"", "us", "default"}
_CURRENT = {0: "0", 1: "1", 2: "2", 3: "3", 4: "4", 5: None}
_LEGACY = {0: None, 1: "1", 2: "2", 3: "3", 4: "4", 5: "0"}
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_HASH_KEYS = {"md5": HashKind.md5, "sha1": HashKind.sha1, "sha256": HashKind.sha256}


class JsonStream:
    """A JSON document read piece by piece from a binary file (UTF-8, BOM allowed)."""

    CHUNK = 1 << 16

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._decode = codecs.getincrementaldecoder("utf-8-sig")().decode
        self._json = json.JSONDecoder()
        self._buf = ""
        self._pos = 0
        self._base = 0  # characters dropped from the front of the buffer
        self._eof = False
        self.bytes_read = 0

    def _fill(self) -> bool:
        if self._eof:
            return False
        # Read at least as much as is pending, so a large value is retried log(n) times.
        data = self._raw.read(max(self.CHUNK, len(self._buf) - self._pos))
        self.bytes_read += len(data)
        try:
            text = self._decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"The file is not UTF-8 text (near byte {self.bytes_read}).") from exc
        self._eof = not data
        self._base += self._pos
        self._buf = self._buf[self._pos:] + text
        self._pos = 0
        return True

    def where(self) -> str:
        return f"character {self._base + self._pos + 1}"

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            found = _WHITESPACE.match(self._buf, self._pos)
            self._pos = found.end() if found else self._pos
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise self._broken(f"expected {char!r}")
        self._pos += 1

    def _broken(self, what: str) -> ImportFileError:
        if self.peek() == "":
            return ImportFileError("The JSON ends too early: the file is cut off (truncated?).")
        return ImportFileError(f"The JSON is broken at {self.where()}: {what}.")

    def value(self) -> Any:
        """The next value, decoded whole."""
        if self.peek() == "":
            raise self._broken("expected a value")
        while True:
            try:
                found, end = self._json.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                # Only an error at the end of what is buffered may be a value that goes on.
                unterminated = "Unterminated" in exc.msg
                if not self._eof and (unterminated or exc.pos >= len(self._buf) - 32):
                    if len(self._buf) - self._pos > MAX_VALUE_CHARS:
                        raise ImportFileError(f"A JSON value at {self.where()} is larger than "
                                              f"{MAX_VALUE_CHARS // 2**20} MB.") from None
                    self._fill()
                    continue
                if unterminated or exc.pos >= len(self._buf):
                    raise ImportFileError("The JSON ends too early: the file is cut off "
                                          "(truncated?).") from None
                raise ImportFileError(f"The JSON is broken at character {self._base + exc.pos + 1}: "
                                      f"{exc.msg}.") from None
            if end == len(self._buf) and self._fill():
                continue  # a number may go on in the next chunk
            self._pos = end
            return found

    def members(self) -> Iterator[str]:
        """Walks an object: yields each key; the caller reads its value before the next."""
        self.expect("{")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise self._broken("expected a key")
            self.expect(":")
            yield key
            if self._closes("}"):
                return

    def items(self) -> Iterator[None]:
        """Walks an array: yields once per item; the caller reads the item each time."""
        self.expect("[")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield None
            if self._closes("]"):
                return

    def _closes(self, close: str) -> bool:
        """Past the ',' between members (False) or the closing bracket (True)."""
        found = self.peek()
        if found not in {",", close}:
            raise self._broken(f"expected ',' or {close!r}")
        self._pos += 1
        return found == close


@dataclass
class VicsReader(Reader):
    """Media records of a VICS file as items, numbered from 1 in file order."""

    _legacy: bool | None = field(default=None, init=False)
    _profile: str = field(default="", init=False)
    _count: int = field(default=0, init=False)
    _media_form: bool = field(default=False, init=False)

    def __iter__(self) -> Iterator[Item]:
        stream = JsonStream(self.raw)
        if stream.peek() != "{":
            raise ImportFileError("A VICS file is a JSON object with @odata.context (or "
                                  "odata.metadata) and value.")
        seen_value = False
        for key in stream.members():
            if key in CONTEXT_KEYS:
                self._read_context(key, stream.value())
            elif key == "value":
                if self._legacy is None:
                    raise ImportFileError("The VICS context (@odata.context or odata.metadata) "
                                          "must come before value: it says how categories are "
                                          "numbered. Without it this is not a VICS file.")
                seen_value = True
                yield from self._value(stream)
            else:
                stream.value()
        if stream.peek() != "":
            raise ImportFileError(f"The JSON goes on after its end, at {stream.where()}.")
        self.bytes_done = stream.bytes_read
        if self._legacy is None:
            raise ImportFileError("This JSON has no @odata.context or odata.metadata: it is "
                                  "not a VICS file.")
        if not seen_value:
            raise ImportFileError("This VICS file has no value array.")

    def _read_context(self, key: str, url: object) -> None:
        text = url if isinstance(url, str) else ""
        found = _CONTEXT.search(text)
        self._legacy = int(found[1]) < 2 if found else key == "odata.metadata"
        self._profile = (found[2] or "") if found else ""
        self._media_form = text.lower().endswith("#media")

    def _value(self, stream: JsonStream) -> Iterator[Item]:
        for _ in stream.items():
            self.bytes_done = stream.bytes_read
            if self._media_form or stream.peek() != "{":
                # A Media record (small): decoded whole, which is much faster.
                yield from self._records(stream.value())
                continue
            # A case may hold a million Media records: walked member by member.
            case: dict[str, Any] = {}
            walked = False
            for key in stream.members():
                if key == "Media" and stream.peek() == "[":
                    walked = True
                    for _ in stream.items():
                        yield from self._records(stream.value())
                        self.bytes_done = stream.bytes_read
                else:
                    case[key] = stream.value()
            if not walked:  # a Media record after all
                yield from self._records(case)
        self.bytes_done = stream.bytes_read

    def _records(self, found: object) -> Iterator[Item]:
        """The Media records of one item of value: itself, or those of a case."""
        media = found.get("Media") if isinstance(found, dict) else None
        for record in media if isinstance(media, list) else [found]:
            self._count += 1
            yield self._item(self._count, record)

    def _item(self, number: int, record: object) -> Item:
        if not isinstance(record, dict):
            return Item(number, error="a Media record must be a JSON object")
        fields = {str(k).lower(): v for k, v in record.items()}
        media_id = fields.get("mediaid")
        try:
            return Item(number, self._entries(fields))
        except Rejected as exc:
            prefix = f"MediaID {media_id}: " if isinstance(media_id, int | str) else ""
            return Item(number, error=f"{prefix}{exc}")

    def _entries(self, fields: dict[str, Any]) -> tuple[Candidate, ...]:
        if fields.get("photodna"):
            self.note("PhotoDNA hashes were ignored: Tipline cannot match them.")
        category = self._category(fields.get("category"))
        label = next((v.strip() for k in ("series", "comments")
                      if isinstance(v := fields.get(k), str) and v.strip()), "")[:LABEL_LENGTH]
        entries = []
        for key, kind in _HASH_KEYS.items():
            text = fields.get(key)
            if text is None or text == "":
                continue
            if not isinstance(text, str):
                raise Rejected(f"{key.upper()} must be a string of hexadecimal digits")
            entries.append(Candidate(kind, check_hex(kind, text), category, label))
        if not entries:
            raise Rejected("the record has no MD5 or SHA1 (PhotoDNA alone cannot be matched)")
        return tuple(entries)

    def _category(self, raw: object) -> str | None:
        number = _category_number(raw)
        if number is None:
            return None
        mapped = (_LEGACY if self._legacy else _CURRENT)[number]
        scheme = self.target.scheme
        us = self._profile.lower() in _US_PROFILES
        if scheme is CategoryScheme.custom:
            return mapped if us else f"{self._profile}:{number}"
        if scheme is CategoryScheme.vics and us:
            return mapped
        if scheme is CategoryScheme.vics:
            self.note(f"Categories of the {self._profile} profile are not the US VICS list; "
                      "entries got the bank's default category instead.")
        else:
            self.note(f"VICS categories have no meaning in the {scheme.value} scheme; entries "
                      "got the bank's default category instead.")
        return None


def _category_number(raw: object) -> int | None:
    """The Category as an int, None when missing; Rejected when it is not 0 to 5."""
    if raw is None:
        return None
    number: object = raw
    if isinstance(raw, str):
        text = raw.strip()
        if text == "" or text.lower() == "null":
            return None
        number = int(text) if text.isdigit() else raw
    elif isinstance(raw, float) and raw.is_integer():
        number = int(raw)
    if isinstance(number, bool) or not isinstance(number, int) or number not in _CURRENT:
        raise Rejected(f"Category {raw!r} is not a VICS category (0 to 5, or null)")
    return number
