"""JSON twin of the follow-up pages, for apps: codename -> bearer token -> read and reply."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tipline.errors import InvalidInput, NotFound
from tipline.i18n import _
from tipline.messaging import followup
from tipline.reports import service as reports
from tipline.reports.models import Report
from tipline.web.deps import client_key, get_ctx, get_session
from tipline.web.jsonbody import read_json
from tipline.web.multipart import parse_streaming_form

router = APIRouter(prefix="/api/v1/followup", tags=["follow-up"])


class SessionIn(BaseModel):
    codename: str = Field(min_length=1, max_length=300)


class SessionOut(BaseModel):
    token: str
    expires_in: int


class MessageOut(BaseModel):
    author: str
    author_label: str
    body: str
    created_at: datetime


class FileOut(BaseModel):
    name: str
    size: int
    media_type: str
    received_at: datetime


class FollowupOut(BaseModel):
    reference: str
    status: str
    created_at: datetime
    messages: list[MessageOut]
    files: list[FileOut]


class MessageIn(BaseModel):
    body: str = Field(min_length=1, max_length=20_000)


def _token(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise NotFound(_("Sign in first: send `Authorization: Bearer <token>`."))
    return authorization[7:].strip()


def current(
    authorization: Annotated[str | None, Header()] = None,
    session: Session = Depends(get_session, scope="function"),
) -> Report:
    return followup.current_report(session, _token(authorization))


@router.post("/session", response_model=SessionOut, summary="Sign in with a codename",
             responses={404: {"description": "no report has that codename"},
                        429: {"description": "too many attempts"}})
async def sign_in(request: Request, body: SessionIn) -> SessionOut:
    ctx = get_ctx(request)
    token = await run_in_threadpool(followup.sign_in, ctx, body.codename, client_key(request))
    return SessionOut(token=token, expires_in=ctx.settings.followup_session_minutes * 60)


@router.get("", response_model=FollowupOut, summary="Status, messages and files")
def read(request: Request, report: Report = Depends(current),
         session: Session = Depends(get_session, scope="function")) -> FollowupOut:
    page = followup.view(session, get_ctx(request).keys, report)
    return FollowupOut(
        reference=page.reference, status=page.status.value, created_at=page.created_at,
        messages=[MessageOut(author=m.author.value, author_label=m.author_label, body=m.body,
                             created_at=m.created_at) for m in page.messages],
        files=[FileOut(name=f.name, size=f.size, media_type=f.media_type,
                       received_at=f.received_at) for f in page.files],
    )


@router.post("/messages", status_code=201, summary="Reply or add information")
async def post_message(request: Request, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
    ctx = get_ctx(request)
    report_id = _report_id(request, authorization)
    payload = await read_json(request)
    body = MessageIn.model_validate(payload) if isinstance(payload, dict) else None
    if body is None:
        raise InvalidInput(_("Send a JSON object with a `body`."), field="body")
    await run_in_threadpool(followup.add_to_report, ctx, report_id, text=body.body, blobs=[])
    return JSONResponse({"added": True}, status_code=201)


@router.post("/files", status_code=201, summary="Add files (multipart `files` parts, optional `body`)",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                 "schema": {"type": "object", "properties": {
                     "body": {"type": "string"},
                     "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}})
async def add_files(request: Request, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
    ctx = get_ctx(request)
    report_id = _report_id(request, authorization)
    form = await parse_streaming_form(request, ctx)
    if form.errors:
        form.discard()
        raise InvalidInput(_("The upload was not accepted."), errors=form.errors)
    if not form.blobs:
        raise InvalidInput(_("Add at least one file as a `files` part."), field="files")
    added = await run_in_threadpool(followup.add_to_report, ctx, report_id, text=form.first("body"),
                                    blobs=form.blobs)
    return JSONResponse({"files_added": added}, status_code=201)


@router.delete("/session", status_code=204, summary="Sign out")
def sign_out(authorization: Annotated[str | None, Header()] = None,
             session: Session = Depends(get_session, scope="function")) -> Response:
    reports.close_followup_session(session, _token(authorization))
    return Response(status_code=204)


def _report_id(request: Request, authorization: str | None) -> uuid.UUID:
    ctx = get_ctx(request)
    with ctx.sessions() as session:
        return followup.current_report(session, _token(authorization)).id
