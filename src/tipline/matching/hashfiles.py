"""Readers of hash lists: plain (one hash a line) and CSV (a header names the columns).

A reader yields one `Item` per line that carries data: the entries it adds, or the reason
it was refused. Readers never fail on a bad line; they raise `ImportFileError` only when
the file as a whole cannot be read as what it claims to be. They work from a binary file
so the runner can show how far through the file they are (`bytes_done`)."""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from tipline.errors import InvalidInput
from tipline.matching.banks import normalise_category
from tipline.matching.models import HEX_LENGTH, CategoryScheme, HashKind

LABEL_LENGTH = 200
KIND_NAMES = {HashKind.md5: "MD5", HashKind.sha1: "SHA-1", HashKind.sha256: "SHA-256",
              HashKind.pdq: "PDQ", HashKind.vpdq: "vPDQ"}
_HEX = re.compile(r"[0-9a-f]+")
_KIND_BY_LENGTH = {32: HashKind.md5, 40: HashKind.sha1}


class ImportFileError(InvalidInput):
    """The file cannot be read as the format it was given as (nothing is imported)."""


class Rejected(Exception):
    """One line or record is refused; the message says why."""


@dataclass(frozen=True)
class Candidate:
    kind: HashKind
    value: str
    category: str | None = None
    label: str = ""
    frames: str | None = None


@dataclass(frozen=True)
class Item:
    """A line (plain, CSV) or record (VICS) of the file, numbered from 1."""

    number: int
    entries: tuple[Candidate, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Target:
    """What a reader needs to know about the bank and the operator's choices."""

    scheme: CategoryScheme
    kind: HashKind | None = None


@dataclass
class Reader:
    """Base of the readers: counts bytes and collects notes for the operator."""

    raw: BinaryIO
    target: Target
    bytes_done: int = 0
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Item]:
        raise NotImplementedError

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def text_lines(self) -> Iterator[str]:
        """Decoded lines with their endings: UTF-8 (BOM dropped), or Windows-1252 for a
        line that is not UTF-8 (old spreadsheet exports)."""
        first = True
        for raw_line in self.raw:
            self.bytes_done += len(raw_line)
            line = raw_line.removeprefix(codecs.BOM_UTF8) if first else raw_line
            first = False
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError:
                yield line.decode("cp1252", errors="replace")


def check_hex(kind: HashKind, text: str) -> str:
    """The lower-case hex value of a hash of this kind, or Rejected saying what is wrong."""
    value = text.strip().lower()
    want = HEX_LENGTH[kind]
    if len(value) != want:
        raise Rejected(f"{KIND_NAMES[kind]} must be {want} hexadecimal digits, "
                       f"this has {len(value)} characters")
    if _HEX.fullmatch(value) is None:
        raise Rejected(f"{KIND_NAMES[kind]} {text.strip()[:80]!r} has characters that are not "
                       "hexadecimal digits")
    return value


def canonical_vpdq(text: str) -> tuple[str, str]:
    """(value, frames) of a vPDQ entry from frames "frame_number,quality,pdq_hex" separated
    by newlines or ';'. Frames are sorted by number and written one a line; the value is the
    SHA-256 of that text, so the same video hash always gives the same entry."""
    frames: dict[int, str] = {}
    for part in re.split(r"[;\n]+", text.strip()):
        fields = [f.strip() for f in part.split(",")]
        if len(fields) < 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise Rejected(f"a vPDQ frame is 'frame_number,quality,pdq_hex', not {part[:80]!r}")
        quality = int(fields[1])
        if quality > 100:
            raise Rejected(f"vPDQ frame {fields[0]} has quality {quality} (0 to 100)")
        frames[int(fields[0])] = f"{int(fields[0])},{quality},{check_hex(HashKind.pdq, fields[2])}"
    if not frames:
        raise Rejected("the vPDQ hash has no frames")
    joined = "\n".join(frames[n] for n in sorted(frames))
    return hashlib.sha256(joined.encode()).hexdigest(), joined


def category_for(scheme: CategoryScheme, raw: str | None) -> str | None:
    try:
        return normalise_category(scheme, raw)
    except InvalidInput as exc:
        raise Rejected(exc.message) from None


# --- plain lists ------------------------------------------------------------------------


class PlainReader(Reader):
    """One hash a line, optionally followed by a label ("<md5>  file.jpg" as md5sum
    prints it). Blank lines and lines starting with # are skipped. With `kind` every line
    must be of that kind; without it 32 hex digits are MD5 and 40 SHA-1, and 64 (SHA-256
    or PDQ) is refused, because guessing wrong would make the entries never match."""

    def __iter__(self) -> Iterator[Item]:
        kind = self.target.kind
        if kind is HashKind.vpdq:
            raise ImportFileError("A plain list cannot hold vPDQ hashes; use a CSV file "
                                  "with a vpdq column.")
        for number, line in enumerate(self.text_lines(), start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            token, _, rest = text.replace("\t", " ").partition(" ")
            label = rest.strip().lstrip("*")[:LABEL_LENGTH]
            try:
                line_kind = self._kind_of(token, kind)
                entry = Candidate(line_kind, check_hex(line_kind, token), label=label)
            except Rejected as exc:
                yield Item(number, error=str(exc))
                continue
            yield Item(number, (entry,))

    @staticmethod
    def _kind_of(token: str, kind: HashKind | None) -> HashKind:
        if kind is not None:
            return kind
        found = _KIND_BY_LENGTH.get(len(token))
        if found is not None:
            return found
        if len(token) == 64:
            raise Rejected("64 hexadecimal digits can be SHA-256 or PDQ; say which with "
                           "--kind sha256 or --kind pdq")
        raise Rejected(f"{token[:80]!r} is not an MD5 (32 hex digits) or SHA-1 (40) hash")


# --- CSV --------------------------------------------------------------------------------

_HASH_COLUMNS = {"md5": HashKind.md5, "sha1": HashKind.sha1, "sha256": HashKind.sha256,
                 "pdq": HashKind.pdq, "vpdq": HashKind.vpdq}
_LABEL_COLUMNS = ("label", "series", "seriesname", "comment", "comments", "tags")
_IGNORED_NOTE = {"photodna": "PhotoDNA hashes were ignored: Tipline cannot match them."}


def _column_key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


class CsvReader(Reader):
    """A header row, then one row per file. Columns are found by name, whatever their case:
    md5, sha1, sha256, pdq, vpdq (frames, see `canonical_vpdq`), category, and a label from
    label, series or comment. Tipline's own export (kind, value, category, label, frames)
    and INTERPOL ICSE exports (';', MD5;SHA1;PhotoDNA;…;Series name;…;Baseline) read too.
    A row with several hashes adds one entry for each; a row with one bad value is refused
    whole, so a row is imported completely or not at all."""

    def __iter__(self) -> Iterator[Item]:
        lines = self.text_lines()
        header_line, offset = "", 0
        for line in lines:
            offset += 1
            if line.strip():
                header_line = line
                break
        if not header_line:
            return
        delimiter = max(",;\t", key=header_line.count)
        header = next(csv.reader([header_line], delimiter=delimiter))
        columns = {_column_key(name): i for i, name in reversed(list(enumerate(header)))}
        layout = self._layout(columns, header)
        reader = csv.reader(lines, delimiter=delimiter)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            number = reader.line_num + offset
            try:
                yield Item(number, tuple(layout(row)))
            except Rejected as exc:
                yield Item(number, error=str(exc))

    def _layout(self, columns: dict[str, int], header: list[str]) -> _RowReader:
        for key, text in _IGNORED_NOTE.items():
            if key in columns:
                self.note(text)
        if "kind" in columns and "value" in columns:
            return _KindValueRow(self.target.scheme, columns)
        hashes = [(kind, columns[key]) for key, kind in _HASH_COLUMNS.items() if key in columns]
        if not hashes:
            if _HEX.fullmatch(header[0].strip().lower()):
                raise ImportFileError("This CSV file has no header row; give it one (md5, sha1, "
                                      "sha256 or pdq, category, label) or import it as a plain list.")
            raise ImportFileError("The CSV header names no hash column: expected md5, sha1, "
                                  "sha256, pdq or vpdq (or kind and value).")
        baseline = columns.get("baseline") if self.target.scheme is CategoryScheme.interpol else None
        return _HashColumnsRow(self.target.scheme, hashes, columns.get("category"),
                               [columns[k] for k in _LABEL_COLUMNS if k in columns], baseline)


class _RowReader:
    def __call__(self, row: list[str]) -> list[Candidate]:
        raise NotImplementedError


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _entry(kind: HashKind, text: str, category: str | None, label: str,
           frames_text: str | None = None) -> Candidate:
    if kind is HashKind.vpdq:
        value, frames = canonical_vpdq(frames_text if frames_text is not None else text)
        if frames_text is not None and text and text.lower() != value:
            raise Rejected("the vPDQ value is not the SHA-256 of its frames")
        return Candidate(kind, value, category, label, frames)
    return Candidate(kind, check_hex(kind, text), category, label)


@dataclass
class _HashColumnsRow(_RowReader):
    scheme: CategoryScheme
    hashes: list[tuple[HashKind, int]]
    category: int | None
    labels: list[int]
    baseline: int | None

    def __call__(self, row: list[str]) -> list[Candidate]:
        category = category_for(self.scheme, _cell(row, self.category))
        if category is None and self.baseline is not None:
            flag = _cell(row, self.baseline).lower()
            if flag:
                category = "baseline" if flag in {"1", "true", "yes", "y"} else "national"
        label = next((text for i in self.labels if (text := _cell(row, i))), "")[:LABEL_LENGTH]
        entries = [_entry(kind, text, category, label)
                   for kind, i in self.hashes if (text := _cell(row, i))]
        if not entries:
            raise Rejected("no hash on this line")
        return entries


@dataclass
class _KindValueRow(_RowReader):
    scheme: CategoryScheme
    columns: dict[str, int]

    def __call__(self, row: list[str]) -> list[Candidate]:
        get = self.columns.get
        name = _cell(row, get("kind")).lower()
        try:
            kind = HashKind(name)
        except ValueError:
            raise Rejected(f"{name[:40]!r} is not a kind of hash (md5, sha1, sha256, pdq, "
                           "vpdq)") from None
        frames = _cell(row, get("frames")) if kind is HashKind.vpdq else None
        category = category_for(self.scheme, _cell(row, get("category")))
        label = _cell(row, get("label"))[:LABEL_LENGTH]
        return [_entry(kind, _cell(row, get("value")), category, label, frames or None)]
