"""The JSON twin of the partner API, under /api/v1/partner (partner surface).

Same partners (HTTP Basic), same documents, same rules, same service functions as the XML
API under /ispws. A JSON `report` or `fileDetails` document has the shape the XML checker
produces: element names as keys, repeated elements as lists, attributes as "@name" keys
next to a "value" key (`{"value": "5550100", "@type": "Mobile"}`), annotations as `true`,
and `null` for an element that is absent. It is turned into the same element tree the XML
reader builds (in the declared order, since JSON objects have none) and checked by the same
checker, so a document is accepted or refused for the same reason whichever way it comes.

Errors are problem documents (RFC 9457, application/problem+json) whose `code` is the
CyberTipline response code the XML API would answer with. Submitting is idempotent on the
partner's own reference: an `Idempotency-Key` header or a `partnerReference` field. The
same reference with the same document answers the first report's id (200, not 201); with a
different document it is refused (409). A retracted or expired report releases its reference.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic
from pydantic import BaseModel, Field

from tipline.errors import TiplineError
from tipline.esp import hashes, schema, service
from tipline.esp.api import Unauthorized, check_one_file, current_partner
from tipline.esp.xml import (
    DESCRIPTIONS,
    MAX_ELEMENTS,
    Code,
    Complex,
    EspError,
    Node,
    Simple,
    check,
)
from tipline.web.deps import get_ctx
from tipline.web.multipart import UploadLimits, parse_streaming_form

logger = logging.getLogger(__name__)
REALM = 'Basic realm="Tipline partner API"'
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_REFERENCE = 200
PROBLEM = "application/problem+json"
HTTP_STATUS = {
    Code.server_error: 500, Code.save_failed: 500, Code.upload_failed: 500,
    Code.report_not_found: 404, Code.file_not_found: 404,
    Code.already_retracted: 409, Code.already_finished: 409,
}


# --- response models (the OpenAPI document is built from these) -----------------------------

class Problem(BaseModel):
    """An error. `code` is the CyberTipline response code (4100 validation failed, 5001
    report does not exist, ...); `detail` says what to fix and names the element."""

    type: str = "about:blank"
    title: str
    status: int
    code: int
    detail: str
    reportId: int | None = None  # noqa: N815 (the API's own field names)


class Status(BaseModel):
    remoteUser: str  # noqa: N815
    remoteIp: str  # noqa: N815


class ReportOpened(BaseModel):
    reportId: int  # noqa: N815
    partnerReference: str | None = None  # noqa: N815
    created: bool = Field(description="false when an earlier request with the same reference "
                                      "already opened this report")


class FileUploaded(BaseModel):
    reportId: int  # noqa: N815
    fileId: str  # noqa: N815
    md5: str = Field(description="MD5 of the bytes received")


class FileDetailsSaved(BaseModel):
    reportId: int  # noqa: N815
    fileId: str  # noqa: N815


class HashesAdded(BaseModel):
    reportId: int  # noqa: N815
    added: int
    held: int = Field(description="hashes the report holds now")


class ReportFinished(BaseModel):
    reportId: int  # noqa: N815
    fileIds: list[str]  # noqa: N815


class ReportRetracted(BaseModel):
    reportId: int  # noqa: N815


# --- errors ---------------------------------------------------------------------------------

def problem(code: int, detail: str, *, report_id: int | None = None, status: int | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    http = status or HTTP_STATUS.get(code, 400)
    body = Problem(title=DESCRIPTIONS.get(code, "Error"), status=http, code=code, detail=detail,
                   reportId=report_id)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=http, media_type=PROBLEM,
                        headers=headers)


class PartnerJsonRoute(APIRoute):
    """Every answer is JSON: refusals become problem documents with their response code,
    failed authentication a 401 problem, anything unexpected a 500 problem (code 1000)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (Unauthorized, HTTPException):  # HTTPBasic refuses a malformed header itself
                return problem(Code.invalid_request, "Authentication failed: send the partner "
                               "credentials with HTTP Basic.", status=401,
                               headers={"WWW-Authenticate": REALM})
            except EspError as error:
                return problem(error.code, error.message, report_id=error.report_id,
                               status=409 if isinstance(error, service.ReferenceConflict) else None)
            except RequestValidationError as error:
                where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in error.errors())
                return problem(Code.invalid_request, f"Invalid request: check {where or 'the request'}.")
            except Exception:
                logger.exception("partner JSON API request failed")
                return problem(Code.server_error, "Server error")

        return handle


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text,
             "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for status, text in ((400, "Refused: see code and detail"), (401, "Wrong or missing credentials"),
                         (404, "Unknown report or file (5001, 5002)"),
                         (409, "Already finished or retracted (5102, 5101), or a reused reference"),
                         (500, "Server error (1000)"))
}
router = APIRouter(prefix="/api/v1/partner", tags=["partner"], route_class=PartnerJsonRoute,
                   responses=ERRORS,
                   # Documents the scheme in OpenAPI; current_partner does the checking.
                   dependencies=[Depends(HTTPBasic(auto_error=False, realm="Tipline partner API"))])
Partner = Annotated[tuple[uuid.UUID, str], Depends(current_partner)]
ReportId = Annotated[int, Path(ge=0, le=10**18 - 1, description="The reportId from POST /reports")]


# --- JSON documents → the XML checker's element tree ----------------------------------------

def _scalar(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise EspError(Code.validation_failed, f"Validation failed: {path} must be a single value, "
                   "not an object or a list.")


def _split(value: dict[str, Any], path: str) -> tuple[dict[str, str], dict[str, Any]]:
    attrs = {k[1:]: _scalar(v, f"attribute {k[1:]} of {path}") for k, v in value.items()
             if k.startswith("@") and v is not None}
    rest = {k: v for k, v in value.items() if not k.startswith("@") and v is not None}
    return attrs, rest


def to_node(name: str, kind: Simple | Complex, value: Any, path: str = "",
            budget: list[int] | None = None) -> Node:
    """The element tree of one JSON value, in the order the declaration gives."""
    path = f"{path}/{name}" if path else name
    budget = budget if budget is not None else [MAX_ELEMENTS]
    budget[0] -= 1
    if budget[0] < 0:
        raise EspError(Code.malformed_xml, "Malformed submittal: the document is too large.")
    if isinstance(kind, Simple):
        if not isinstance(value, dict):
            return Node(name, {}, text=_scalar(value, path))
        attrs, rest = _split(value, path)
        for key in rest:
            if key != "value":
                raise EspError(Code.validation_failed, f"Validation failed: {path}/{key} is not "
                               f"allowed: {path} holds a value and attributes (@name).")
        return Node(name, attrs, text=_scalar(rest.get("value", ""), path))
    if not isinstance(value, dict):
        raise EspError(Code.validation_failed, f"Validation failed: {path} must be an object.")
    attrs, rest = _split(value, path)
    index = {c.name: (i, c) for i, c in enumerate(kind.children)}
    children: list[tuple[int, Node]] = []
    for key, item in rest.items():
        found = index.get(key)
        if found is None:
            raise EspError(Code.validation_failed, f"Validation failed: {path}/{key[:80]} is not an "
                           f"element allowed in {path}.")
        position, spec = found
        items = item if isinstance(item, list) else [item]
        children += [(position, to_node(spec.name, spec.kind, one, path, budget))
                     for one in items if one is not None]
    children.sort(key=lambda pair: pair[0])  # stable: repeated elements keep their order
    return Node(name, attrs, [node for _i, node in children])


def read_json_document(data: bytes, root: str, kind: Complex,
                       extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse a JSON object and check it as the `root` element; returns the checked document
    and the top-level fields that are not part of it (`extra` names them with defaults)."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise EspError(Code.malformed_xml, "Malformed submittal: the body is not JSON.") from None
    if not isinstance(value, dict):
        raise EspError(Code.validation_failed, f"Validation failed: the body must be a {root} object.")
    outside = {key: value.pop(key, default) for key, default in (extra or {}).items()}
    document: dict[str, Any] = check(to_node(root, kind, value), root, kind)
    return document, outside


async def _json_body(request: Request) -> bytes:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise EspError(Code.invalid_request, "Invalid request: send the document as application/json.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise EspError(Code.invalid_request,
                           f"Invalid request: the document is larger than {MAX_JSON_BYTES} bytes.")
    return bytes(body)


def _json_schema(kind: Simple | Complex) -> dict[str, Any]:
    """A loose JSON Schema of a declaration, for the OpenAPI document (the checker is the
    authority on values)."""
    scalar: dict[str, Any] = {"type": ["string", "number", "boolean"]}
    if isinstance(kind, Simple):
        if not kind.attrs:
            return scalar
        return {"type": "object", "properties": {"value": scalar, **{
            f"@{a.name}": scalar for a in kind.attrs}}, "additionalProperties": False}
    props: dict[str, Any] = {f"@{a.name}": scalar for a in kind.attrs}
    for child in kind.children:
        inner = _json_schema(child.kind)
        props[child.name] = {"type": "array", "items": inner} if child.repeats else inner
    required = [c.name for c in kind.children if c.min and kind.mode == "seq"]
    return {"type": "object", "properties": props, "additionalProperties": False,
            **({"required": required} if required else {})}


def _body_doc(kind: Complex, description: str, **extra: Any) -> dict[str, Any]:
    body = _json_schema(kind)
    body["properties"].update(extra)
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": body}}}}


def _reference(header: str | None, field: Any) -> str | None:
    values = {v.strip() for v in (header, field) if isinstance(v, str) and v.strip()}
    if field is not None and not isinstance(field, str):
        raise EspError(Code.validation_failed, "Validation failed: partnerReference must be text.")
    if len(values) > 1:
        raise EspError(Code.invalid_request, "Invalid request: the Idempotency-Key header and the "
                       "partnerReference field differ.")
    reference = values.pop() if values else None
    if reference is not None and (len(reference) > MAX_REFERENCE or not reference.isprintable()):
        raise EspError(Code.validation_failed, f"Validation failed: partnerReference must be "
                       f"printable text of at most {MAX_REFERENCE} characters.")
    return reference


# --- routes ---------------------------------------------------------------------------------

@router.get("/status", response_model=Status)
async def status(request: Request, partner: Partner) -> Status:
    return Status(remoteUser=partner[1], remoteIp=request.client.host if request.client else "unknown")


@router.post("/reports", response_model=ReportOpened, status_code=201,
             responses={200: {"model": ReportOpened, "description": "Already opened under this reference"}},
             openapi_extra=_body_doc(schema.REPORT, "A report document (the XML report, as JSON).",
                                     partnerReference={"type": "string", "maxLength": MAX_REFERENCE}))
async def submit(request: Request, partner: Partner,
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> Response:
    ctx = get_ctx(request)
    document, outside = read_json_document(await _json_body(request), "report", schema.REPORT,
                                           {"partnerReference": None})
    reference = _reference(idempotency_key, outside["partnerReference"])
    emails = [e.get("value", "") if isinstance(e, dict) else str(e)
              for e in document["reporter"]["reportingPerson"].get("email", [])]
    if not any(emails):
        raise EspError(Code.validation_failed, "Validation failed: report/reporter/reportingPerson needs an email.")
    report_id, created = await service.open_report(ctx, partner[0], document, reference)
    body = ReportOpened(reportId=report_id, partnerReference=reference, created=created)
    return JSONResponse(body.model_dump(), status_code=201 if created else 200)


@router.post("/reports/{report_id}/files", response_model=FileUploaded, status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                 "schema": {"type": "object", "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
async def upload(request: Request, partner: Partner, report_id: ReportId) -> FileUploaded:
    ctx = get_ctx(request)
    try:
        form = await parse_streaming_form(request, ctx, UploadLimits.partner(ctx.settings))
    except TiplineError as error:
        raise EspError(Code.file_upload_failed, f"File upload failed: {error.message}",
                       report_id=report_id) from None
    try:
        check_one_file(form)
        done = await service.add_file(ctx, partner[0], report_id, form.blobs[0])
    except BaseException:
        form.discard()
        raise
    return FileUploaded(reportId=done.report_id, fileId=done.file_id, md5=done.md5)


@router.post("/reports/{report_id}/files/{file_id}/details", response_model=FileDetailsSaved,
             openapi_extra=_body_doc(schema.FILE_DETAILS, "A fileDetails document; reportId and "
                                     "fileId come from the path."))
async def file_details(request: Request, partner: Partner, report_id: ReportId, file_id: str) -> FileDetailsSaved:
    ctx = get_ctx(request)
    try:
        value = json.loads(await _json_body(request))
    except (ValueError, RecursionError):
        raise EspError(Code.malformed_xml, "Malformed submittal: the body is not JSON.") from None
    if not isinstance(value, dict):
        raise EspError(Code.validation_failed, "Validation failed: the body must be a fileDetails object.")
    for key, expected in (("reportId", report_id), ("fileId", file_id)):
        if value.setdefault(key, expected) not in (expected, str(expected)):
            raise EspError(Code.invalid_request, f"Invalid request: {key} in the body differs from the path.")
    details = check(to_node("fileDetails", schema.FILE_DETAILS, value), "fileDetails", schema.FILE_DETAILS)
    saved_report, saved_file = await service.set_file_details(ctx, partner[0], details)
    return FileDetailsSaved(reportId=saved_report, fileId=saved_file)


_HASHES_BODY = {"requestBody": {"required": True, "description": hashes.__doc__, "content": {
    "application/json": {"schema": {"type": "object", "required": ["hashes"], "properties": {
        "hashes": {"type": "array", "minItems": 1, "maxItems": hashes.MAX_PER_REQUEST, "items": {
            "type": "object", "required": ["type"], "properties": {
                "type": {"enum": list(hashes.TYPES)}, "value": {"type": "string"},
                "quality": {"type": "integer", "minimum": 0, "maximum": 100},
                "label": {"type": "string", "maxLength": hashes.MAX_LABEL},
                "frames": {"type": "array", "items": {"type": "object", "properties": {
                    "frame": {"type": "integer"}, "quality": {"type": "integer"},
                    "pdq": {"type": "string"}}}}}}}}}}}}}


@router.post("/reports/{report_id}/hashes", response_model=HashesAdded, status_code=201,
             openapi_extra=_HASHES_BODY)
async def add_hashes(request: Request, partner: Partner, report_id: ReportId) -> HashesAdded:
    """Hash-only leads: the hashes of files the partner does not send. They are matched
    against the hash banks once the report is finished."""
    try:
        value = json.loads(await _json_body(request))
    except (ValueError, RecursionError):
        raise EspError(Code.malformed_xml, "Malformed submittal: the body is not JSON.") from None
    found = hashes.read_hashes(value)
    held = await service.add_hashes(get_ctx(request), partner[0], report_id, found)
    return HashesAdded(reportId=report_id, added=len(found), held=held)


@router.post("/reports/{report_id}/finish", response_model=ReportFinished)
async def finish(request: Request, partner: Partner, report_id: ReportId) -> ReportFinished:
    done = await service.finish(get_ctx(request), partner[0], report_id)
    return ReportFinished(reportId=done.report_id, fileIds=done.file_ids)


@router.post("/reports/{report_id}/retract", response_model=ReportRetracted)
async def retract(request: Request, partner: Partner, report_id: ReportId) -> ReportRetracted:
    await service.retract(get_ctx(request), partner[0], report_id)
    return ReportRetracted(reportId=report_id)


