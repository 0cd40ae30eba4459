"""Filing a report: the slow codename hash first, then one transaction for the report,
its evidence, custody events and audit rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tipline.db import transaction
from tipline.errors import InvalidInput
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import StagedBlob
from tipline.i18n import _
from tipline.messaging import service as messaging
from tipline.messaging.enums import Author
from tipline.reports import service as reports
from tipline.reports.enums import Source
from tipline.reports.schemas import ReportCreate
from tipline.reports.states import CoarseStatus
from tipline.web.context import AppContext


@dataclass(frozen=True)
class Receipt:
    report_id: uuid.UUID
    reference: str
    codename: str
    status: CoarseStatus
    country: str | None
    files: int


def submit_report(
    ctx: AppContext, data: ReportCreate, blobs: list[StagedBlob], *, source: Source
) -> Receipt:
    """Runs in a worker thread. On any failure the stored blobs are removed again."""
    try:
        code = reports.make_codename(ctx.keys, ctx.argon2_cost, ctx.settings.codename_words)
        with transaction(ctx.sessions) as session:
            report = reports.create_report(
                session, ctx.keys, data, source=source, codename_lookup=code.lookup,
                actor="reporter",
            )
            for blob in blobs:
                evidence.attach_blob(session, ctx.keys, blob, report_id=report.id, actor="reporter")
            receipt = Receipt(
                report_id=report.id, reference=report.reference, codename=code.codename,
                status=reports.coarse_status(report),
                country=data.reporter_country or data.child_country, files=len(blobs),
            )
    except BaseException:
        for blob in blobs:
            ctx.blobs.delete(blob.name)
        raise
    return receipt


def add_to_report(
    ctx: AppContext, report_id: uuid.UUID, *, text: str, blobs: list[StagedBlob]
) -> int:
    """The reporter adds a message and/or files on the follow-up page. Returns files added."""
    body = text.strip()
    if not body and not blobs:
        for blob in blobs:
            ctx.blobs.delete(blob.name)
        raise InvalidInput(_("Write a message or choose a file to add."), field="body")
    try:
        with transaction(ctx.sessions) as session:
            message_id = None
            if body or blobs:
                message = messaging.post_message(
                    session, ctx.keys, report_id=report_id, author=Author.reporter,
                    author_label="reporter",
                    body=body or _("(files added)"), actor="reporter",
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
