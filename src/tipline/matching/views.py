"""Staff pages for hash banks (admins only): list and create banks, switch them on and
off, set their PDQ threshold, import files with a progress page, export entries.

Imports run in a thread of their own (`import_jobs`), because `imports.run_import` owns its
transactions; the upload is streamed to a private file under the data directory first."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from tipline.accounts import service as accounts
from tipline.accounts.permissions import Permission
from tipline.accounts.service import StaffUser
from tipline.context import AppContext
from tipline.db import transaction
from tipline.errors import InvalidInput, NotFound, TiplineError, TooLarge
from tipline.i18n import _
from tipline.matching import banks, exports, import_jobs, imports
from tipline.matching.models import CategoryScheme, HashBank, HashKind, JobState
from tipline.web import csrf
from tipline.web.deps import get_ctx, get_session
from tipline.web.pages import render_staff
from tipline.web.staff import requires

router = APIRouter(include_in_schema=False)
MANAGE = requires(Permission.banks_manage)
MAX_FIELD_BYTES = 10_000
MAX_PARTS = 20
_SERVICE_FIELDS = {"category": "default_category"}


# --- banks -----------------------------------------------------------------------------------

@router.get("/staff/banks", response_class=HTMLResponse)
def banks_page(request: Request, staff: StaffUser = Depends(MANAGE),
               session: Session = Depends(get_session, scope="function")) -> Response:
    return _banks_page(request, session, values={"pdq_threshold": "31"})


def _banks_page(request: Request, session: Session, *, values: dict[str, str],
                errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return render_staff(request, "matching/banks.html", status_code=status_code,
                        summaries=banks.list_banks(session), values=values, errors=errors or {},
                        schemes=_scheme_choices(), max_threshold=banks.MAX_THRESHOLD)


@router.post("/staff/banks", response_class=HTMLResponse)
def create_bank(request: Request, name: str = Form(""), source: str = Form(""),
                description: str = Form(""), category_scheme: str = Form(""),
                default_category: str = Form(""), pdq_threshold: str = Form(""),
                csrf_token: str = Form(""), staff: StaffUser = Depends(MANAGE),
                session: Session = Depends(get_session, scope="function")) -> Response:
    values = {"name": name, "source": source, "description": description,
              "category_scheme": category_scheme, "default_category": default_category,
              "pdq_threshold": pdq_threshold}
    try:
        csrf.check(request, csrf_token)
        scheme = _scheme(category_scheme)
        bank = banks.create_bank(session, name=name, category_scheme=scheme, source=source,
                                 description=description, default_category=default_category,
                                 pdq_threshold=_threshold(pdq_threshold), actor=staff.actor)
    except TiplineError as exc:
        session.rollback()
        return _banks_page(request, session, values=values, errors=_errors(exc),
                           status_code=exc.status_code)
    return RedirectResponse(f"/staff/banks/{bank.id}?done=created", status_code=303)


@router.get("/staff/banks/{bank_id}", response_class=HTMLResponse)
def bank_page(request: Request, bank_id: uuid.UUID, done: str = "",
              staff: StaffUser = Depends(MANAGE),
              session: Session = Depends(get_session, scope="function")) -> Response:
    bank = banks.get_bank(session, bank_id)
    return _bank_page(request, session, bank, notice=_done(done))


def _done(done: str) -> str:
    """A fixed message after a redirect (?done=...): no text from the address is shown."""
    return {"created": _("The bank was created."),
            "enabled": _("The bank is enabled: files are matched against it."),
            "disabled": _("The bank is disabled: nothing is matched against it until it is "
                          "enabled again."),
            "threshold": _("The PDQ threshold was saved."),
            "queued": _("The import waits for another one to finish; it appears below once it "
                        "starts.")}.get(done, "")


def _bank_page(request: Request, session: Session, bank: HashBank, *, notice: str = "",
               errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
               status_code: int = 200) -> Response:
    summary = next(s for s in banks.list_banks(session) if s.bank.id == bank.id)
    history = banks.list_imports(session, bank)
    return render_staff(
        request, "matching/bank.html", status_code=status_code, summary=summary, bank=bank,
        history=history, who=_actor_names(session), notice=notice, errors=errors or {},
        values=values or {"pdq_threshold": str(bank.pdq_threshold)},
        formats=imports.FORMATS, kinds=_kind_choices(), max_threshold=banks.MAX_THRESHOLD,
        max_upload=_size(get_ctx(request).settings.bank_import_max_bytes))


@router.post("/staff/banks/{bank_id}/enabled", response_class=HTMLResponse)
def set_enabled(request: Request, bank_id: uuid.UUID, enabled: str = Form(""),
                csrf_token: str = Form(""), staff: StaffUser = Depends(MANAGE),
                session: Session = Depends(get_session, scope="function")) -> Response:
    bank = banks.get_bank(session, bank_id)
    try:
        csrf.check(request, csrf_token)
        if enabled not in ("yes", "no"):
            raise InvalidInput(_("Choose to enable or to disable the bank."), field="enabled")
        banks.set_enabled(session, bank, enabled == "yes", actor=staff.actor)
    except TiplineError as exc:
        session.rollback()
        return _bank_page(request, session, bank, errors=_errors(exc), status_code=exc.status_code)
    done = "enabled" if enabled == "yes" else "disabled"
    return RedirectResponse(f"/staff/banks/{bank.id}?done={done}", status_code=303)


@router.post("/staff/banks/{bank_id}/threshold", response_class=HTMLResponse)
def set_threshold(request: Request, bank_id: uuid.UUID, pdq_threshold: str = Form(""),
                  csrf_token: str = Form(""), staff: StaffUser = Depends(MANAGE),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    bank = banks.get_bank(session, bank_id)
    try:
        csrf.check(request, csrf_token)
        banks.set_threshold(session, bank, _threshold(pdq_threshold), actor=staff.actor)
    except TiplineError as exc:
        session.rollback()
        return _bank_page(request, session, bank, errors=_errors(exc),
                          values={"pdq_threshold": pdq_threshold}, status_code=exc.status_code)
    return RedirectResponse(f"/staff/banks/{bank.id}?done=threshold", status_code=303)


# --- imports ---------------------------------------------------------------------------------

@router.post("/staff/banks/{bank_id}/imports", response_class=HTMLResponse)
async def upload_import(request: Request, bank_id: uuid.UUID,
                        staff: StaffUser = Depends(MANAGE)) -> Response:
    """Streams the file to disk, starts the import, and sends the browser to its progress
    page. Holds no request transaction: the import writes from its own thread."""
    ctx = get_ctx(request)
    await run_in_threadpool(_existing_bank, ctx, bank_id)
    upload = _Upload(request, ctx.settings.data_dir, ctx.settings.bank_import_max_bytes)
    try:
        await upload.read()
        csrf.check(request, upload.fields.get(csrf.FIELD))
        fmt, kind = _import_choices(upload.fields)
        if upload.path is None or upload.size == 0:
            raise InvalidInput(_("Choose a file that is not empty."), field="file")
        import_id = await run_in_threadpool(
            import_jobs.start_import, ctx.sessions, bank_id=bank_id, path=upload.path,
            format=fmt, kind=kind, actor=staff.actor)
    except TiplineError as exc:
        upload.discard()
        return await run_in_threadpool(_bank_page_again, request, ctx, bank_id, exc, upload.fields)
    if import_id is None:
        return RedirectResponse(f"/staff/banks/{bank_id}?done=queued", status_code=303)
    return RedirectResponse(f"/staff/banks/{bank_id}/imports/{import_id}", status_code=303)


def _existing_bank(ctx: AppContext, bank_id: uuid.UUID) -> None:
    with transaction(ctx.sessions) as session:
        banks.get_bank(session, bank_id)


def _bank_page_again(request: Request, ctx: AppContext, bank_id: uuid.UUID, exc: TiplineError,
                     fields: dict[str, str]) -> Response:
    with transaction(ctx.sessions) as session:
        bank = banks.get_bank(session, bank_id)
        values = {"pdq_threshold": str(bank.pdq_threshold), "format": fields.get("format", ""),
                  "kind": fields.get("kind", "")}
        return _bank_page(request, session, bank, errors=_errors(exc, "file"), values=values,
                          status_code=exc.status_code)


@router.get("/staff/banks/{bank_id}/imports/{import_id}", response_class=HTMLResponse)
def import_page(request: Request, bank_id: uuid.UUID, import_id: uuid.UUID,
                staff: StaffUser = Depends(MANAGE),
                session: Session = Depends(get_session, scope="function")) -> Response:
    bank = banks.get_bank(session, bank_id)
    record = banks.get_import(session, import_id)
    if record.bank_id != bank.id:
        raise NotFound(_("No such import."))
    live = import_jobs.progress_of(record.id)
    # Still "running" until this process has heard the end (hooks, notes) as well.
    running = record.state in (JobState.running, JobState.queued) or live is not None
    return render_staff(
        request, "matching/import.html", bank=bank, item=record, running=running, live=live,
        rejects=[_reject_row(r) for r in record.rejects or []],
        notes=import_jobs.notes_of(record.id), who=_actor_names(session),
        rechecking=record.rematch_state == JobState.running)


def _reject_row(reject: dict[str, Any]) -> tuple[str, Any, str]:
    unit = "record" if "record" in reject else "line"
    return unit, reject.get(unit), str(reject.get("error", ""))


# --- exports ---------------------------------------------------------------------------------

@router.get("/staff/banks/{bank_id}/export.csv")
async def export_csv(request: Request, bank_id: uuid.UUID,
                     staff: StaffUser = Depends(MANAGE)) -> Response:
    return await _export(request, bank_id, "csv", staff)


@router.get("/staff/banks/{bank_id}/export.json")
async def export_vics(request: Request, bank_id: uuid.UUID,
                      staff: StaffUser = Depends(MANAGE)) -> Response:
    return await _export(request, bank_id, "vics", staff)


async def _export(request: Request, bank_id: uuid.UUID, fmt: str, staff: StaffUser) -> Response:
    """The export is written to a private file first, as fast as the database reads, and
    then sent: streaming straight from the database would hold a SQLite transaction (and
    its write lock) open for as long as the browser takes to download."""
    ctx = get_ctx(request)
    path, name = await run_in_threadpool(_write_export, ctx, bank_id, fmt, staff.actor)
    media_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return FileResponse(path, media_type=media_type, filename=name,
                        background=BackgroundTask(import_jobs.discard, path))


def _write_export(ctx: AppContext, bank_id: uuid.UUID, fmt: str, actor: str) -> tuple[Path, str]:
    suffix = ".csv" if fmt == "csv" else ".json"
    path = import_jobs.private_path(ctx.settings.data_dir, "export" + suffix)
    try:
        with transaction(ctx.sessions) as session:  # commits the export's audit entry
            bank = banks.get_bank(session, bank_id)
            with path.open("w", encoding="utf-8", newline="") as out:
                exports.export_bank(session, bank, out, fmt, actor=actor)
            slug = re.sub(r"[^A-Za-z0-9._-]+", "-", bank.name).strip("-.") or "bank"
    except BaseException:
        import_jobs.discard(path)
        raise
    return path, slug[:80] + suffix


class _Upload:
    """A multipart body with small fields and one file: the fields into memory, the file
    part straight onto disk under the data directory (a bank file holds hashes, not
    evidence, but may be hundreds of MB). The form token must come before the file, so
    nothing is written for a forged form."""

    def __init__(self, request: Request, data_dir: Path, max_bytes: int) -> None:
        self.request, self.data_dir, self.max_bytes = request, data_dir, max_bytes
        self.fields: dict[str, str] = {}
        self.path: Path | None = None
        self.size = 0
        self._out: BinaryIO | None = None
        self._parts = 0
        self._header, self._header_value = bytearray(), bytearray()
        self._headers: dict[str, bytes] = {}
        self._name, self._filename, self._value = "", "", bytearray()
        self._is_file = False

    async def read(self) -> None:
        kind, options = parse_options_header(self.request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise InvalidInput(_("The form must be sent as multipart/form-data."), field="file")
        parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_header_field": self._header_field,
            "on_header_value": self._header_text, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done, "on_part_data": self._data,
            "on_part_end": self._end})
        limit, received = self.max_bytes + MAX_PARTS * MAX_FIELD_BYTES, 0
        try:
            async for chunk in self.request.stream():
                received += len(chunk)
                if received > limit:
                    raise TooLarge(self._too_large(), field="file")
                await run_in_threadpool(parser.write, chunk)
            await run_in_threadpool(parser.finalize)
        except TiplineError:
            raise
        except Exception as exc:  # the parser's own errors: a malformed body
            raise InvalidInput(_("The form data could not be read."), field="file") from exc
        finally:
            self._close()
        if self._is_file:
            raise InvalidInput(_("The upload was cut off. Please try again."), field="file")

    def discard(self) -> None:
        self._close()
        if self.path is not None:
            import_jobs.discard(self.path)
            self.path = None

    def _too_large(self) -> str:
        return _("The file is larger than %(size)s, the most this site accepts for a bank "
                 "import.") % {"size": _size(self.max_bytes)}

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def _begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InvalidInput(_("The form has too many parts."), field="file")
        self._headers, self._name, self._filename = {}, "", ""
        self._value, self._is_file = bytearray(), False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_text(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header.decode("latin-1").lower()] = bytes(self._header_value)
        self._header.clear()
        self._header_value.clear()

    def _headers_done(self) -> None:
        _kind, options = parse_options_header(self._headers.get("content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        # A file input left empty sends a part with an empty file name: treat it as no file.
        if filename is None or not filename:
            return
        if self.path is not None:
            raise InvalidInput(_("Send one file at a time."), field="file")
        csrf.check(self.request, self.fields.get(csrf.FIELD))
        self.path = import_jobs.private_path(self.data_dir, filename.decode("utf-8", "replace"))
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._out = os.fdopen(descriptor, "wb")
        self._is_file = True

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            assert self._out is not None
            self.size += end - start
            if self.size > self.max_bytes:
                raise TooLarge(self._too_large(), field="file")
            self._out.write(data[start:end])
        else:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise InvalidInput(_("This is too long."), field=self._name or "file")

    def _end(self) -> None:
        if self._is_file:
            self._close()
            self._is_file = False
        elif self._name:
            self.fields.setdefault(self._name, self._value.decode("utf-8", "replace"))


# --- helpers ---------------------------------------------------------------------------------

def _errors(exc: TiplineError, default: str = "form") -> dict[str, str]:
    if isinstance(exc, InvalidInput) and exc.errors:
        return {_SERVICE_FIELDS.get(k, k): v for k, v in exc.errors.items()}
    return {_SERVICE_FIELDS.get(exc.field or default, exc.field or default): exc.message}


def _size(limit: int) -> str:
    return f"{limit // 2**20:,} MB" if limit >= 2**20 else f"{max(1, limit // 1024):,} KB"


def _scheme(text: str) -> CategoryScheme:
    try:
        return CategoryScheme(text)
    except ValueError:
        raise InvalidInput(_("Choose a category scheme."), field="category_scheme") from None


def _threshold(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(_("The PDQ threshold is a whole number of bits from 0 to %(n)s "
                             "(31 is the usual one).") % {"n": banks.MAX_THRESHOLD},
                           field="pdq_threshold") from None


def _import_choices(fields: dict[str, str]) -> tuple[str, HashKind | None]:
    fmt = fields.get("format", "auto") or "auto"
    if fmt not in imports.FORMATS:
        raise InvalidInput(_("Choose a file format."), field="format")
    kind = fields.get("kind", "")
    try:
        return fmt, HashKind(kind) if kind else None
    except ValueError:
        raise InvalidInput(_("Choose a hash type."), field="kind") from None


def _scheme_choices() -> list[tuple[str, str, str]]:
    """(value, label, the categories it accepts) for the scheme select."""
    labels = {CategoryScheme.industry: _("Industry (A1, A2, B1, B2)"),
              CategoryScheme.interpol: _("INTERPOL (baseline, national)"),
              CategoryScheme.vics: _("Project VIC (0 to 4)"),
              CategoryScheme.iwf: _("IWF / UK (A, B, C)"),
              CategoryScheme.custom: _("Our own categories (free text)")}
    return [(s.value, labels[s], ", ".join(banks.SCHEME_CATEGORIES.get(s, ()))) for s in CategoryScheme]


def _kind_choices() -> list[tuple[str, str]]:
    return [("", _("Decide by length (32 digits MD5, 40 SHA-1)")), ("md5", "MD5"),
            ("sha1", "SHA-1"), ("sha256", "SHA-256"), ("pdq", "PDQ")]


def _actor_names(session: Session) -> dict[str, str]:
    """Staff display names by audit actor ("staff:<id>"); other actors show as they are."""
    return {f"staff:{user.id}": user.display_name for user in accounts.list_users(session)}

