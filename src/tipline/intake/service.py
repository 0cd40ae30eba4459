"""Filing a report: the slow codename hash first, then one transaction for the report,
its evidence, custody events and audit rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tipline.context import AppContext
from tipline.db import transaction
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import StagedBlob
from tipline.matching import worker as hashing_worker
from tipline.reports import service as reports
from tipline.reports.enums import Source
from tipline.reports.schemas import ReportCreate
from tipline.reports.states import CoarseStatus
from tipline.triage import service as triage


@dataclass(frozen=True)
class Receipt:
    report_id: uuid.UUID
    reference: str
    codename: str
    status: CoarseStatus
    country: str | None
    files: int


def submit_report(
    ctx: AppContext, data: ReportCreate, blobs: list[StagedBlob], *, source: Source,
    actor: str = "reporter",
) -> Receipt:
    """Runs in a worker thread. On any failure the stored blobs are removed again."""
    try:
        code = reports.make_codename(ctx.keys, ctx.argon2_cost, ctx.settings.codename_words)
        with transaction(ctx.sessions) as session:
            report = reports.create_report(
                session, ctx.keys, data, source=source, codename_lookup=code.lookup,
                actor=actor,
            )
            triage.on_new_report(session, report)
            for blob in blobs:
                evidence.attach_blob(session, ctx.keys, blob, report_id=report.id, actor=actor)
            receipt = Receipt(
                report_id=report.id, reference=report.reference, codename=code.codename,
                status=reports.coarse_status(report),
                country=data.reporter_country or data.child_country, files=len(blobs),
            )
    except BaseException:
        for blob in blobs:
            ctx.blobs.delete(blob.name)
        raise
    if blobs:
        hashing_worker.wake()  # committed: the files can be hashed and matched now
    return receipt
