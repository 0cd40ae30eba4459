"""Signing a reporter in with their codename, and what their follow-up page shows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tipline import crypto
from tipline.context import AppContext
from tipline.db import transaction
from tipline.errors import InvalidInput, NotFound
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import StagedBlob
from tipline.i18n import _
from tipline.messaging import service as messaging
from tipline.messaging.enums import Author
from tipline.messaging.service import MessageView
from tipline.reports import codenames
from tipline.reports import service as reports
from tipline.reports.models import Report
from tipline.reports.states import CoarseStatus

WRONG_CODENAME = "That codename does not match a report. Check each word and try again."


def sign_in(ctx: AppContext, codename: str, client: str) -> str:
    """Returns a session token. Runs in a worker thread (Argon2 is slow on purpose).
    Wrong and unknown codenames get the same answer and cost the same time."""
    ctx.followup_limiter.check(client)
    normalised = codenames.normalise(codename)
    if not normalised or len(normalised) > 300:
        raise InvalidInput(_("Enter the codename you were given."), field="codename")
    lookup = crypto.lookup_hash(ctx.keys, normalised, ctx.argon2_cost)
    with transaction(ctx.sessions) as session:
        report = reports.find_by_codename(session, lookup)
        if report is None:
            raise NotFound(_(WRONG_CODENAME))
        return reports.open_followup_session(session, report, ctx.settings.followup_session_minutes)


@dataclass(frozen=True)
class FileView:
    name: str
    size: int
    media_type: str
    received_at: datetime


@dataclass(frozen=True)
class FollowupView:
    reference: str
    status: CoarseStatus
    created_at: datetime
    messages: list[MessageView]
    files: list[FileView]


def current_report(session: Session, token: str | None) -> Report:
    report = reports.report_for_token(session, token)
    if report is None:
        raise NotFound(_("Your session has ended. Please sign in again with your codename."))
    return report


def view(session: Session, keys: crypto.Keys, report: Report) -> FollowupView:
    files = [
        FileView(evidence.original_name(keys, item), item.size, item.media_type, item.received_at)
        for item in evidence.list_for_report(session, report.id)
    ]
    return FollowupView(
        reference=report.reference, status=reports.coarse_status(report),
        created_at=report.created_at,
        messages=messaging.list_messages(session, keys, report.id), files=files,
    )


def add_to_report(
    ctx: AppContext, report_id: uuid.UUID, *, text: str, blobs: list[StagedBlob]
) -> int:
    """The reporter adds a message and/or files on the follow-up page. Returns files added."""
    body = text.strip()
    if not body and not blobs:
        raise InvalidInput(_("Write a message or choose a file to add."), field="body")
    try:
        with transaction(ctx.sessions) as session:
            message = messaging.post_message(
                session, ctx.keys, report_id=report_id, author=Author.reporter,
                author_label="reporter", body=body or _("(files added)"), actor="reporter",
                max_chars=ctx.settings.max_text_chars,
            )
            message_id = message.id
            for blob in blobs:
                evidence.attach_blob(session, ctx.keys, blob, report_id=report_id,
                                     actor="reporter", message_id=message_id)
    except BaseException:
        for blob in blobs:
            ctx.blobs.delete(blob.name)
        raise
    return len(blobs)
