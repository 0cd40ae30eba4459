"""JSON API for reports: partner apps and phone operators use the same schema as the form."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tipline.errors import InvalidInput
from tipline.i18n import _
from tipline.intake.forms import validate_report
from tipline.intake.service import submit_report
from tipline.reports.enums import Source
from tipline.reports.schemas import ReportCreate
from tipline.web.deps import get_ctx
from tipline.web.jsonbody import read_json
from tipline.web.multipart import StreamedForm, parse_streaming_form

router = APIRouter(prefix="/api/v1", tags=["reports"])


class ReceiptOut(BaseModel):
    reference: str
    codename: str
    status: str
    files: int
    followup_url: str


REPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ReportCreate"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["report"],
                    "properties": {
                        "report": {"type": "string", "description": "the ReportCreate document as JSON"},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                }
            },
        },
    }
}


@router.post(
    "/reports", status_code=201, response_model=ReceiptOut, openapi_extra=REPORT_BODY,
    summary="File a report",
    description="JSON alone, or multipart/form-data with a `report` part (JSON) and `files` "
    "parts. The response holds the one-time follow-up codename: it is never shown again.",
    responses={422: {"description": "invalid input, with an `errors` object by field"},
               413: {"description": "a file or the body is too large"}},
)
async def create_report(request: Request) -> JSONResponse:
    ctx = get_ctx(request)
    form: StreamedForm | None = None
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await parse_streaming_form(request, ctx)
        try:
            if form.errors:
                raise InvalidInput(_("The upload was not accepted."), errors=form.errors)
            raw = form.first("report")
            if not raw:
                raise InvalidInput(_("The multipart body needs a `report` part with the report as JSON."), field="report")
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidInput(_("The `report` part is not valid JSON: %(error)s") % {"error": str(exc)}, field="report") from exc
            data = _validate(payload, ctx.settings.max_text_chars)
        except InvalidInput:
            form.discard()
            raise
        blobs = form.blobs
    else:
        data = _validate(await read_json(request), ctx.settings.max_text_chars)
        blobs = []
    receipt = await run_in_threadpool(submit_report, ctx, data, blobs, source=Source.public_api)
    out = ReceiptOut(reference=receipt.reference, codename=receipt.codename,
                     status=receipt.status.value, files=receipt.files,
                     followup_url="/api/v1/followup/session")
    return JSONResponse(out.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})


def _validate(payload: Any, max_text_chars: int) -> ReportCreate:
    if not isinstance(payload, dict):
        raise InvalidInput(_("The report must be a JSON object."), field="body")
    return validate_report(payload, max_text_chars, separator=".")
