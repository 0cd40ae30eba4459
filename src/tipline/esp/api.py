"""The CyberTipline-compatible XML API under /ispws (partner surface).

Every application error is HTTP 200 with a non-zero responseCode, as the service it mirrors
answers; only failed authentication is HTTP 401. Responses are application/xml in UTF-8
with a Request-ID header.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Receive, Scope, Send

from tipline.context import AppContext
from tipline.errors import TiplineError
from tipline.esp import schema, service
from tipline.esp.xml import (
    Code,
    EspError,
    read_document,
    report_done_response,
    report_response,
)
from tipline.esp.xsd import schema_document
from tipline.web.deps import get_ctx
from tipline.web.multipart import StreamedForm, UploadLimits, parse_streaming_form
from tipline.web.security import SecurityHeaders


class Unauthorized(Exception):
    """Raised by `current_partner`; `partner_endpoint` answers it with 401."""


PartnerId = tuple[uuid.UUID, str]
Handler = Callable[[Request, PartnerId], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def partner_endpoint(handler: Handler, *, finishing: bool = False) -> Endpoint:
    """Authenticates the partner, then runs the handler. Failed authentication is 401; any
    unexpected failure is response code 1000 in the document the client expects, so a
    client never sees an HTML or JSON error."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, await current_partner(request))
        except Unauthorized:
            return unauthorized_response()
        except Exception:
            logger.exception("ESP API request failed")
            body = (report_done_response(Code.server_error, 0) if finishing
                    else report_response(Code.server_error, "Server error"))
            return xml_response(body)

    endpoint.__name__ = handler.__name__
    return endpoint


REALM = 'Basic realm="ESP Web Services"'
MAX_XML_BYTES = 4 * 1024 * 1024
MAX_FORM_BYTES = 64 * 1024
AUTH_CACHE_SECONDS = 30.0
logger = logging.getLogger(__name__)


def _request_id() -> str:
    return uuid.uuid4().hex


def xml_response(body: bytes) -> Response:
    return Response(body, media_type="application/xml; charset=UTF-8",
                    headers={"Request-ID": _request_id()})


def unauthorized_response() -> Response:
    # An empty body, as the live service is reported to answer today (esp-api.md §3).
    return Response(b"", status_code=401, media_type="application/xml; charset=UTF-8",
                    headers={"WWW-Authenticate": REALM, "Request-ID": _request_id()})


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep and username else None


@dataclass(frozen=True)
class _Login:
    """Credentials verified recently: whose they are, and the stored hash they matched."""

    partner_id: uuid.UUID
    username: str
    password_hash: str
    fresh_until: float  # time.monotonic()


class _Logins:
    """Recently verified partner credentials, in memory only, keyed by a keyed digest (never
    the password). A fresh entry is trusted for AUTH_CACHE_SECONDS without reading the
    database, so a disabled partner or a changed password takes effect within that time.

    Argon2id costs some 200 ms of CPU. A client sends its requests in parallel with the same
    credentials, so without care every one of them verified afresh whenever an entry aged:
    concurrent checks of the same credentials now share one, and an aged entry is renewed by
    reading the account only (still active, still the hash the password matched)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._entries: dict[str, _Login] = {}
        self._checking: dict[str, asyncio.Future[_Login | None]] = {}

    def digest(self, username: str, password: str) -> str:
        return hmac.new(self._key, f"{username}\x00{password}".encode(), hashlib.sha256).hexdigest()

    def fresh(self, digest: str) -> _Login | None:
        found = self._entries.get(digest)
        return found if found is not None and found.fresh_until > time.monotonic() else None

    async def check(self, ctx: AppContext, digest: str, username: str, password: str) -> _Login | None:
        """Verify against the database (in a worker thread), once for all concurrent callers."""
        checking = self._checking.get(digest)
        if checking is None:
            checking = asyncio.ensure_future(run_in_threadpool(self._verify, ctx, digest, username, password))
            self._checking[digest] = checking
            checking.add_done_callback(lambda _done: self._checking.pop(digest, None))
        # Shielded: one caller going away must not cancel the check the others wait for.
        return await asyncio.shield(checking)

    def _verify(self, ctx: AppContext, digest: str, username: str, password: str) -> _Login | None:
        earlier = self._entries.get(digest)
        with ctx.sessions() as session:
            partner = service.authenticate(session, username, password,
                                           verified_hash=earlier.password_hash if earlier else None)
        if partner is None:
            self._entries.pop(digest, None)
            return None
        if len(self._entries) > 10_000:
            self._entries.clear()
        login = _Login(partner.id, partner.username, partner.password_hash,
                       time.monotonic() + AUTH_CACHE_SECONDS)
        self._entries[digest] = login
        return login


def _logins(request: Request) -> _Logins:
    logins: _Logins | None = getattr(request.app.state, "esp_logins", None)
    if logins is None:
        logins = _Logins(get_ctx(request).keys.derive("esp-auth-cache"))
        request.app.state.esp_logins = logins
    return logins


async def current_partner(request: Request) -> tuple[uuid.UUID, str]:
    credentials = _basic(request)
    if credentials is None:
        raise Unauthorized
    logins = _logins(request)
    digest = logins.digest(*credentials)
    found = logins.fresh(digest) or await logins.check(get_ctx(request), digest, *credentials)
    if found is None:
        raise Unauthorized
    return found.partner_id, found.username


async def _xml_body(request: Request) -> tuple[bytes, str | None]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_XML_BYTES:
            raise EspError(Code.invalid_request,
                           f"Invalid request: the document is larger than {MAX_XML_BYTES} bytes.")
    _kind, options = parse_options_header(request.headers.get("content-type", ""))
    charset = options.get(b"charset")
    return bytes(body), charset.decode("latin-1") if charset else None


async def _form_id(request: Request) -> int:
    """The `id` field, from an urlencoded or a multipart body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise EspError(Code.invalid_request, "Invalid request: send the field id as a form "
                       "(application/x-www-form-urlencoded or multipart/form-data).")
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise EspError(Code.invalid_request, "Invalid request: the form is too large.")
    try:
        form: FormData = await request.form(max_files=0, max_fields=10, max_part_size=MAX_FORM_BYTES)
    except Exception:  # noqa: BLE001 (the form parser's own errors: a malformed body)
        raise EspError(Code.invalid_request, "Invalid request: the form could not be read.") from None
    return parse_report_id(form.get("id"))


def check_one_file(form: StreamedForm) -> None:
    """Exactly one file per upload; a second file part is refused as it arrives."""
    if form.file_parts > 1:
        raise EspError(Code.invalid_request, ONE_FILE)
    if form.errors:
        raise EspError(Code.file_upload_failed, "File upload failed: " + " ".join(form.errors.values()))
    if len(form.blobs) != 1:
        raise EspError(Code.invalid_request, ONE_FILE)


ONE_FILE = "Invalid request: send exactly one file, in the form field file."


def parse_report_id(value: Any) -> int:
    text = value.strip() if isinstance(value, str) else ""
    if not text.isdigit() or len(text) > 18:
        raise EspError(Code.invalid_request, "Invalid request: the field id must be a report id (a number).")
    return int(text)


async def status(request: Request, partner: PartnerId) -> Response:
    host = request.client.host if request.client else "unknown"
    return xml_response(report_response(Code.success, f"Remote User : {partner[1]}, Remote Ip : {host}"))


async def xsd(_request: Request, _partner: PartnerId) -> Response:
    return Response(schema_document(), media_type="application/xml; charset=UTF-8",
                    headers={"Request-ID": _request_id()})


async def submit(request: Request, partner: PartnerId) -> Response:
    ctx = get_ctx(request)
    try:
        data, charset = await _xml_body(request)
        document = read_document(data, "report", schema.REPORT, charset)
        if not any(_email_values(document["reporter"]["reportingPerson"])):
            raise EspError(Code.validation_failed,
                           "Validation failed: report/reporter/reportingPerson needs an email.")
        report_id, _created = await service.open_report(ctx, partner[0], document)
    except EspError as error:
        return xml_response(report_response(error.code, error.message, report_id=error.report_id))
    return xml_response(report_response(Code.success, report_id=report_id))


def _email_values(person: dict[str, Any]) -> list[str]:
    return [e.get("value", "") if isinstance(e, dict) else str(e) for e in person.get("email", [])]


async def upload(request: Request, partner: PartnerId) -> Response:
    ctx = get_ctx(request)
    try:
        form = await parse_streaming_form(request, ctx, UploadLimits.partner(ctx.settings))
    except TiplineError as error:
        return xml_response(report_response(Code.file_upload_failed, f"File upload failed: {error.message}"))
    try:
        check_one_file(form)
        report_id = parse_report_id(form.first("id"))
        done = await service.add_file(ctx, partner[0], report_id, form.blobs[0])
    except EspError as error:
        form.discard()
        return xml_response(report_response(error.code, error.message, report_id=error.report_id))
    except BaseException:
        form.discard()
        raise
    return xml_response(report_response(Code.success, report_id=done.report_id, file_id=done.file_id,
                                        md5=done.md5))


async def fileinfo(request: Request, partner: PartnerId) -> Response:
    ctx = get_ctx(request)
    try:
        data, charset = await _xml_body(request)
        details = read_document(data, "fileDetails", schema.FILE_DETAILS, charset)
        report_id, file_id = await service.set_file_details(ctx, partner[0], details)
    except EspError as error:
        return xml_response(report_response(error.code, error.message, report_id=error.report_id))
    return xml_response(report_response(Code.success, report_id=report_id, file_id=file_id))


async def finish(request: Request, partner: PartnerId) -> Response:
    ctx = get_ctx(request)
    report_id = 0
    try:
        report_id = await _form_id(request)
        done = await service.finish(ctx, partner[0], report_id)
    except EspError as error:
        # Clients only understand a reportDoneResponse here, errors included (§8.5, §10.12).
        return xml_response(report_done_response(error.code, error.report_id or report_id))
    return xml_response(report_done_response(Code.success, done.report_id, done.file_ids))


async def retract(request: Request, partner: PartnerId) -> Response:
    ctx = get_ctx(request)
    try:
        report_id = await _form_id(request)
        await service.retract(ctx, partner[0], report_id)
    except EspError as error:
        return xml_response(report_response(error.code, error.message, report_id=error.report_id))
    return xml_response(report_response(Code.success, report_id=report_id))


# (method, path) → endpoint: the whole XML API.
ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("GET", "/ispws/status"): partner_endpoint(status),
    ("GET", "/ispws/xsd"): partner_endpoint(xsd),
    ("POST", "/ispws/submit"): partner_endpoint(submit),
    ("POST", "/ispws/upload"): partner_endpoint(upload),
    ("POST", "/ispws/fileinfo"): partner_endpoint(fileinfo),
    ("POST", "/ispws/finish"): partner_endpoint(finish, finishing=True),
    ("POST", "/ispws/retract"): partner_endpoint(retract),
}

# The same endpoints as routes of the application, where they answer what the lane passes
# on (a wrong method gets 405, as on every other route).
router = APIRouter(include_in_schema=False)
for (_method, _path), _endpoint in ENDPOINTS.items():
    router.add_api_route(_path, _endpoint, methods=[_method])


class PartnerLane:
    """ASGI middleware: a partner API request goes straight to its endpoint, past the
    framework's routing, dependency solving and page middleware (locale), which cost more
    than the endpoint itself for small requests (docs/performance.md). Security headers
    are still added; every other request passes on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lane = SecurityHeaders(self._dispatch)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) in ENDPOINTS:
            await self.lane(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    async def _dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        response = await ENDPOINTS[(scope["method"], scope["path"])](Request(scope, receive))
        await response(scope, receive, send)
