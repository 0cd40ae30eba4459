"""Streaming multipart parsing: file parts go straight into the encrypted vault.

Starlette's own form parser spools large files to a temporary file in the clear; evidence
must never touch disk unencrypted, so uploads are parsed here chunk by chunk instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from python_multipart.multipart import MultipartParser, parse_options_header

from tipline.context import AppContext
from tipline.errors import InvalidInput, TiplineError, TooLarge
from tipline.evidence.blobstore import BlobWriter, StagedBlob
from tipline.i18n import _
from tipline.settings import Settings

MAX_PARTS = 400
MAX_FIELD_BYTES = 200_000
MAX_FIELDS_TOTAL = 1_000_000
# Received chunks (tens of KiB each) are parsed in one thread hop per this many bytes: a
# hop costs the event loop and a worker thread more than parsing a small chunk does.
PARSE_BATCH_BYTES = 1024 * 1024


@dataclass
class StreamedForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    blobs: list[StagedBlob] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    ctx: AppContext | None = None
    # File parts seen, stored or refused (the partner API wants exactly one).
    file_parts: int = 0

    def first(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def discard(self) -> None:
        """Remove every blob this form stored: nothing of a rejected submission is kept."""
        if self.ctx is not None:
            for blob in self.blobs:
                self.ctx.blobs.delete(blob.name)
        self.blobs.clear()


@dataclass(frozen=True)
class UploadLimits:
    max_files: int
    max_file_bytes: int
    allowed_types: tuple[str, ...]

    @classmethod
    def public(cls, settings: Settings) -> UploadLimits:
        return cls(settings.max_files, settings.max_file_bytes, settings.allowed_types)

    @classmethod
    def partner(cls, settings: Settings) -> UploadLimits:
        return cls(1, settings.esp_max_file_bytes, settings.esp_allowed_types)


class _State:
    def __init__(self, ctx: AppContext, result: StreamedForm, limits: UploadLimits) -> None:
        self.ctx = ctx
        self.limits = limits
        self.result = result
        self.headers: dict[str, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self.name = ""
        self.filename: str | None = None
        self.value = bytearray()
        self.writer: BlobWriter | None = None
        self.failed_part = False
        self.parts = 0
        self.field_bytes = 0
        self.file_count = 0

    def fail(self, error: TiplineError) -> None:
        key = error.field or "form"
        self.result.errors.setdefault(key, error.message)
        self.failed_part = True
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

    # --- parser callbacks ---
    def on_part_begin(self) -> None:
        self.parts += 1
        self.headers = {}
        self.name, self.filename, self.value = "", None, bytearray()
        self.writer, self.failed_part = None, False
        if self.parts > MAX_PARTS:
            self.fail(InvalidInput(_("The form has too many parts."), field="form"))

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _kind, options = parse_options_header(self.headers.get("content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self.filename = None if filename is None else filename.decode("utf-8", "replace")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.failed_part or start == end:
            return
        chunk = data[start:end]
        try:
            if self.filename is None:
                self._field_data(chunk)
            else:
                self._file_data(chunk)
        except TiplineError as error:
            self.fail(error)

    def _field_data(self, chunk: bytes) -> None:
        self.value += chunk
        self.field_bytes += len(chunk)
        if len(self.value) > MAX_FIELD_BYTES or self.field_bytes > MAX_FIELDS_TOTAL:
            raise InvalidInput(_("This is too long."), field=self.name or "form")

    def _file_data(self, chunk: bytes) -> None:
        if self.writer is None:
            limits = self.limits
            self.file_count += 1
            self.result.file_parts = self.file_count
            if self.file_count > limits.max_files:
                raise InvalidInput(
                    _("Too many files: you can add at most %(n)s.") % {"n": limits.max_files},
                    field="files",
                )
            self.writer = self.ctx.blobs.writer(
                self.ctx.keys, original_name=(self.filename or "file")[:255],
                max_bytes=limits.max_file_bytes, allowed_types=limits.allowed_types,
            )
        self.writer.write(chunk)

    def on_part_end(self) -> None:
        if self.failed_part:
            return
        if self.filename is None:
            try:
                text = self.value.decode("utf-8")
            except UnicodeDecodeError:
                self.fail(InvalidInput(_("This is not valid text."), field=self.name or "form"))
                return
            self.result.fields.setdefault(self.name, []).append(text)
        elif self.writer is not None:
            try:
                self.result.blobs.append(self.writer.finish())
            except TiplineError as error:
                self.fail(error)
            self.writer = None
        # A file input left empty arrives as a part with a filename and no data: skip it.


async def parse_streaming_form(request: Request, ctx: AppContext,
                               limits: UploadLimits | None = None) -> StreamedForm:
    """Stream a multipart body: fields into memory, files through the vault writer. Limits
    default to the public form's (settings.max_files, max_file_bytes, allowed_types)."""
    limits = limits or UploadLimits.public(ctx.settings)
    content_type = request.headers.get("content-type", "")
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput(_("The form must be sent as multipart/form-data."), field="form")
    result = StreamedForm(ctx=ctx)
    state = _State(ctx, result, limits)
    parser = MultipartParser(boundary, {
        "on_part_begin": state.on_part_begin,
        "on_part_data": state.on_part_data,
        "on_part_end": state.on_part_end,
        "on_header_field": state.on_header_field,
        "on_header_value": state.on_header_value,
        "on_header_end": state.on_header_end,
        "on_headers_finished": state.on_headers_finished,
    })
    limit = limits.max_files * limits.max_file_bytes + 4 * MAX_FIELDS_TOTAL
    received = 0
    waiting: list[bytes] = []  # received, not parsed yet
    waiting_bytes = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise TooLarge(_("The upload is larger than this site accepts."), field="files")
            waiting.append(chunk)
            waiting_bytes += len(chunk)
            if waiting_bytes >= PARSE_BATCH_BYTES:
                # Hashing, encryption and file writes run off the event loop, so one large
                # upload on a slow disk does not stall every other visitor.
                await run_in_threadpool(_parse, parser, waiting, last=False)
                waiting, waiting_bytes = [], 0
        await run_in_threadpool(_parse, parser, waiting, last=True)
    except TiplineError:
        if state.writer is not None:
            state.writer.abort()
        result.discard()
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        if state.writer is not None:
            state.writer.abort()
        result.discard()
        raise InvalidInput(_("The form data could not be read."), field="form") from exc
    if state.writer is not None:  # body ended inside a file part
        state.writer.abort()
        result.errors.setdefault("files", _("The upload was cut off. Please try again."))
    return result


def _parse(parser: MultipartParser, chunks: list[bytes], *, last: bool) -> None:
    for chunk in chunks:
        parser.write(chunk)
    if last:
        parser.finalize()
