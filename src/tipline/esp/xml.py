"""Safe XML for the ESP API: a small expat reader that refuses DTDs and entities, a
declarative checker for element sequences, and the two response documents.

The reader builds its own tiny tree from expat callbacks, so nothing is ever fetched,
expanded or resolved: a document type declaration, an entity declaration or a reference to
an external entity stops parsing with an error. The checker turns a tree into plain JSON
(dicts, lists, strings, numbers, booleans) or raises `EspError` naming the element.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape

from tipline import clock

MAX_DEPTH = 32
MAX_ELEMENTS = 20_000
DEFAULT_TEXT_MAX = 50_000


class Code:
    """Response codes of the CyberTipline API that Tipline uses."""

    success = 0
    server_error = 1000
    save_failed = 1100
    upload_failed = 1110
    file_upload_failed = 1111
    invalid_request = 4000
    validation_failed = 4100
    malformed_xml = 4110
    malformed_file = 4200
    report_not_found = 5001
    file_not_found = 5002
    already_retracted = 5101
    already_finished = 5102


class EspError(Exception):
    """A request we refuse; `code` is the response code to answer with, `message` the
    description (safe to show to the partner)."""

    def __init__(self, code: int, message: str, *, report_id: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.report_id = report_id


@dataclass
class Node:
    name: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""
    line: int = 0


# --- reading --------------------------------------------------------------------------------

def _refuse(what: str) -> Callable[..., None]:
    def handler(*_args: object) -> None:
        raise EspError(Code.malformed_xml, f"Malformed XML submittal: {what} are not accepted.")
    return handler


def parse(data: bytes, encoding: str | None = None) -> Node:
    """The document's root element, or EspError (4110) for anything that is not plain XML.
    `encoding` (from the Content-Type) is used only when the document declares none."""
    if encoding and data.lstrip()[:5] == b"<?xml" and b"encoding" in data.split(b"?>", 1)[0]:
        encoding = None
    try:
        parser = expat.ParserCreate(encoding)  # no namespace processing: prefixes stay in names
    except LookupError:
        raise EspError(Code.malformed_xml, "Malformed XML submittal: unknown character set.") from None
    stack: list[Node] = []
    root: list[Node] = []
    count = [0]

    def start(name: str, attrs: dict[str, str]) -> None:
        count[0] += 1
        if count[0] > MAX_ELEMENTS or len(stack) >= MAX_DEPTH:
            raise EspError(Code.malformed_xml, "Malformed XML submittal: the document is too large or too deep.")
        node = Node(name, dict(attrs), line=parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            stack[-1].text += text

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = _refuse("document type declarations (DTDs)")
    parser.EntityDeclHandler = _refuse("entity declarations")
    parser.UnparsedEntityDeclHandler = _refuse("entity declarations")
    parser.NotationDeclHandler = _refuse("notation declarations")
    parser.ExternalEntityRefHandler = _refuse("external entities")  # type: ignore[assignment]
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)  # noqa: FBT003 (expat's isfinal)
    except expat.ExpatError as exc:
        raise EspError(Code.malformed_xml, f"Malformed XML submittal: {expat.errors.messages[exc.code]} "
                       f"(line {exc.lineno}, column {exc.offset + 1}).") from None
    if not root:
        raise EspError(Code.malformed_xml, "Malformed XML submittal: there is no root element.")
    return root[0]


# --- value types ----------------------------------------------------------------------------

Convert = Callable[[str, str], Any]  # (text, what) -> value, or raises EspError


def _invalid(what: str, why: str) -> EspError:
    return EspError(Code.validation_failed, f"Validation failed: {what} {why}.")


def text(max_len: int = DEFAULT_TEXT_MAX, *, non_blank: bool = False) -> Convert:
    def convert(value: str, what: str) -> str:
        value = value.strip()
        if non_blank and not value:
            raise _invalid(what, "must not be blank")
        if len(value) > max_len:
            raise _invalid(what, f"is longer than {max_len} characters ({len(value)})")
        return value
    return convert


def url(max_len: int = 2083) -> Convert:
    def convert(value: str, what: str) -> str:
        value = text(max_len)(value, what)
        if any(ch.isspace() or ord(ch) < 32 for ch in value):
            raise _invalid(what, "must not contain spaces or control characters")
        return value
    return convert


def pattern(regex: str, max_len: int = 255) -> Convert:
    compiled = re.compile(regex)

    def convert(value: str, what: str) -> str:
        value = text(max_len)(value, what)
        if not compiled.fullmatch(value):
            raise _invalid(what, f"“{value[:80]}” is not in the expected form")
        return value
    return convert


def boolean(value: str, what: str) -> bool:
    value = value.strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise _invalid(what, f"must be true or false, not “{value[:40]}”")


def flag(value: str, what: str) -> bool:
    """An annotation: present as <x/> or <x>true</x>."""
    if value.strip() in ("", "true", "1"):
        return True
    raise _invalid(what, "must be empty or true")


def empty(value: str, what: str) -> None:
    if value.strip():
        raise _invalid(what, "must be empty")


def integer(low: int, high: int) -> Convert:
    def convert(value: str, what: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise _invalid(what, f"must be a whole number, not “{value.strip()[:40]}”") from None
        if not low <= number <= high:
            raise _invalid(what, f"must be between {low} and {high}")
        return number
    return convert


long_int = integer(-(2**63), 2**63 - 1)


def double(value: str, what: str) -> float:
    try:
        return float(value.strip())
    except ValueError:
        raise _invalid(what, f"must be a number, not “{value.strip()[:40]}”") from None


def enum(values: Sequence[str]) -> Convert:
    allowed = frozenset(values)

    def convert(value: str, what: str) -> str:
        value = value.strip()
        if value not in allowed:
            raise _invalid(what, f"has the unknown value “{value[:80]}”")
        return value
    return convert


def _parse_datetime(value: str, what: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise _invalid(what, f"“{value.strip()[:40]}” is not a date and time such as 2026-01-02T03:04:05Z") from None


def date_time(value: str, what: str) -> str:
    return _parse_datetime(value, what).isoformat()


def past_date_time_with_zone(value: str, what: str) -> str:
    moment = _parse_datetime(value, what)
    if moment.tzinfo is None:
        raise _invalid(what, "must carry a time zone (Z or an offset such as -07:00)")
    if moment > clock.now():
        raise _invalid(what, "is in the future")
    return moment.isoformat()


def a_date(value: str, what: str) -> str:
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise _invalid(what, f"“{value.strip()[:40]}” is not a date such as 2026-01-02") from None


def date_or_date_time(value: str, what: str) -> str:
    return a_date(value, what) if len(value.strip()) == 10 else date_time(value, what)


def ip_address(value: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise _invalid(what, f"“{value.strip()[:60]}” is not an IP address") from None


# --- structure ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attr:
    name: str
    convert: Convert
    required: bool = False


@dataclass(frozen=True)
class Simple:
    """Text content (converted), with optional attributes. With attributes, the JSON value is
    {"value": ..., "@name": ...}; without, the converted value itself."""

    convert: Convert
    attrs: tuple[Attr, ...] = ()


@dataclass(frozen=True)
class Complex:
    """Element content. `mode` is "seq" (order enforced), "all" (any order, each at most
    once) or "choice" (exactly one child)."""

    children: tuple[Child, ...]
    attrs: tuple[Attr, ...] = ()
    mode: str = "seq"
    exclusive: tuple[tuple[str, str], ...] = ()  # pairs that may not both appear
    one_attr_of: tuple[str, ...] = ()  # at least one of these attributes is required


@dataclass(frozen=True)
class Child:
    name: str
    kind: Simple | Complex
    min: int = 0
    max: int | None = 1  # None: unbounded

    @property
    def repeats(self) -> bool:
        return self.max != 1


IGNORED_ATTR_PREFIXES = ("xmlns", "xsi:")


def _attrs(node: Node, declared: tuple[Attr, ...], path: str) -> dict[str, Any]:
    known = {a.name: a for a in declared}
    out: dict[str, Any] = {}
    for name, raw in node.attrs.items():
        if name.startswith(IGNORED_ATTR_PREFIXES):
            continue
        spec = known.get(name)
        if spec is None:
            raise _invalid(f"{path}", f"has an attribute “{name}” that is not allowed here")
        out[f"@{name}"] = spec.convert(raw, f"attribute {name} of {path}")
    for spec in declared:
        if spec.required and f"@{spec.name}" not in out:
            raise _invalid(path, f"is missing its required attribute {spec.name}")
    return out


def check(node: Node, name: str, kind: Simple | Complex, path: str = "") -> Any:
    """Validate one element against its declaration and return its JSON value."""
    path = f"{path}/{name}" if path else name
    if isinstance(kind, Simple):
        if node.children:
            raise _invalid(path, f"must hold text, not the element {node.children[0].name}")
        value = kind.convert(node.text, path)
        if not kind.attrs:
            return value
        return {"value": value, **_attrs(node, kind.attrs, path)}
    if node.text.strip():
        raise _invalid(path, "must hold elements, not text")
    out = _attrs(node, kind.attrs, path)
    if kind.one_attr_of and not any(f"@{a}" in out for a in kind.one_attr_of):
        raise _invalid(path, f"is missing its required attribute {kind.one_attr_of[0]}")
    _children(node, kind, path, out)
    return out


def _children(node: Node, kind: Complex, path: str, out: dict[str, Any]) -> None:
    index = {c.name: i for i, c in enumerate(kind.children)}
    position = 0
    for child in node.children:
        i = index.get(child.name)
        if i is None:
            raise _invalid(f"{path}/{child.name}", f"is not an element allowed in {path}")
        spec = kind.children[i]
        if kind.mode == "seq" and i < position:
            after = kind.children[position].name
            raise _invalid(f"{path}/{child.name}",
                           f"is out of order: it must come before {after} (the elements of "
                           f"{path} follow a fixed order)")
        position = i
        value = check(child, spec.name, spec.kind, path)
        if spec.repeats:
            values = out.setdefault(spec.name, [])
            if spec.max is not None and len(values) >= spec.max:
                raise _invalid(f"{path}/{spec.name}", f"may appear at most {spec.max} times")
            values.append(value)
        elif spec.name in out:
            raise _invalid(f"{path}/{spec.name}", "may appear only once")
        else:
            out[spec.name] = value
    _counts(kind, path, out)


def _counts(kind: Complex, path: str, out: dict[str, Any]) -> None:
    for spec in kind.children:
        present = len(out[spec.name]) if spec.repeats and spec.name in out else int(spec.name in out)
        if present < spec.min:
            raise _invalid(path, f"is missing its required element {spec.name}")
    if kind.mode == "choice":
        chosen = [c.name for c in kind.children if c.name in out]
        if len(chosen) != 1:
            names = ", ".join(c.name for c in kind.children)
            raise _invalid(path, f"must hold exactly one of {names}")
    for first, second in kind.exclusive:
        if first in out and second in out:
            raise _invalid(path, f"may hold {first} or {second}, not both")


def read_document(data: bytes, root: str, kind: Complex, encoding: str | None = None) -> dict[str, Any]:
    """Parse and check a request document whose root must be `root`."""
    node = parse(data, encoding)
    if node.name != root:
        raise EspError(Code.validation_failed,
                       f"Validation failed: the root element must be {root}, not {node.name[:80]}.")
    value: dict[str, Any] = check(node, root, kind)
    return value


# --- responses ------------------------------------------------------------------------------

DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
DESCRIPTIONS = {
    Code.success: "Success",
    Code.server_error: "Server error",
    Code.save_failed: "Save failed",
    Code.upload_failed: "Upload failed",
    Code.file_upload_failed: "File upload failed",
    Code.invalid_request: "Invalid request",
    Code.validation_failed: "Validation failed",
    Code.malformed_xml: "Malformed XML submittal",
    Code.malformed_file: "Malformed file submittal",
    Code.report_not_found: "Report does not exist",
    Code.file_not_found: "File does not exist",
    Code.already_retracted: "Report already retracted",
    Code.already_finished: "Report already finished",
}


def report_response(code: int, description: str = "", *, report_id: int | None = None,
                    file_id: str | None = None, md5: str | None = None) -> bytes:
    """A reportResponse; the description is never empty (clients reject an empty one)."""
    text_ = description or DESCRIPTIONS.get(code, "Error")
    parts = [DECLARATION, "<reportResponse>", f"<responseCode>{code}</responseCode>",
             f"<responseDescription>{escape(text_)}</responseDescription>"]
    if report_id is not None:
        parts.append(f"<reportId>{report_id}</reportId>")
    if file_id is not None:
        parts.append(f"<fileId>{escape(file_id)}</fileId>")
    if md5 is not None:
        parts.append(f"<hash>{escape(md5)}</hash>")
    parts.append("</reportResponse>")
    return "".join(parts).encode("utf-8")


def report_done_response(code: int, report_id: int, file_ids: Sequence[str] = ()) -> bytes:
    """A reportDoneResponse, for finish: successes and errors alike (clients expect this root)."""
    files = "".join(f"<fileId>{escape(f)}</fileId>" for f in file_ids)
    body = (f"<reportDoneResponse><responseCode>{code}</responseCode><reportId>{report_id}</reportId>"
            + (f"<files>{files}</files>" if files else "<files/>") + "</reportDoneResponse>")
    return (DECLARATION + body).encode("utf-8")
