"""Filing finished partner reports: each becomes an ordinary Tipline report with its
evidence, custody events, correlation identifiers and priority.

The reports finished in one group-commit batch (tipline.batching) are filed together: one
read of their documents, files and partners, one correlation query, and one Core
`executemany` per table for the new rows (`db.insert_new`), in place of the ORM's
per-object flush, which cost more than everything else the batch did.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, TypeAlias, cast

from sqlalchemy import BindParameter, Row, Table, bindparam, exists, select, update
from sqlalchemy.orm import Session

from tipline import crypto
from tipline.audit import service as audit
from tipline.context import AppContext
from tipline.db import insert_new
from tipline.esp import mapping
from tipline.esp.models import EspFile, EspReport, Partner
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import StagedBlob
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.matching.models import SubmittedHash
from tipline.reports import service as reports
from tipline.reports.enums import Source
from tipline.reports.models import Report
from tipline.triage import correlation
from tipline.triage import service as triage

NAME_CONTEXT = b"tipline:esp-file-name"
_REPORTS = cast(Table, EspReport.__table__)
_FILES = cast(Table, EspFile.__table__)
_HASHES = cast(Table, SubmittedHash.__table__)
# A result row of any shape (SQLAlchemy types rows by their columns).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]

# Built once (every batch runs them): the batch's reports, files and partners, and the
# links written back once the Tipline reports exist.


def _ids() -> BindParameter[Any]:
    return bindparam("b_ids", expanding=True)


_PARTNERS = cast(Table, Partner.__table__)
# The batch's reports with their partners, and whether any has files or submitted hashes
# (most have neither: then those reads are skipped). One round trip for all.
_SELECT_DOCUMENTS = (
    select(_REPORTS.c.id, _REPORTS.c.report_id, _REPORTS.c.partner_id, _REPORTS.c.opened_at,
           _REPORTS.c.document, _PARTNERS.c.name.label("partner_name"),
           _PARTNERS.c.username.label("partner_username"),
           exists().where(_FILES.c.esp_report_id == _REPORTS.c.id).label("has_files"),
           exists().where(_HASHES.c.esp_report_id == _REPORTS.c.id).label("has_hashes"))
    .join(_PARTNERS, _PARTNERS.c.id == _REPORTS.c.partner_id)
    .where(_REPORTS.c.id.in_(_ids())))
_SELECT_FILES = (select(_FILES).where(_FILES.c.esp_report_id.in_(_ids()))
                 .order_by(_FILES.c.uploaded_at, _FILES.c.file_id))
_SET_REPORT = (update(_REPORTS).where(_REPORTS.c.id == bindparam("b_id"))
               .values(tipline_report_id=bindparam("b_report")))
_SET_EVIDENCE = update(_FILES).where(_FILES.c.id == bindparam("b_id")).values(evidence_id=bindparam("b_evidence"))
_SET_HASH_REPORT = (update(_HASHES).where(_HASHES.c.esp_report_id == bindparam("b_id"))
                    .values(report_id=bindparam("b_report")))


def file_reports(session: Session, ctx: AppContext,
                 esp_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[Report, list[str]]]:
    """File these partner reports (already marked finished in this transaction); returns,
    for each, its new Tipline report and the partner's file ids in upload order."""
    connection = session.connection()
    documents = {row.id: row for row in connection.execute(_SELECT_DOCUMENTS, {"b_ids": esp_ids})}
    files: dict[uuid.UUID, list[AnyRow]] = {esp_id: [] for esp_id in esp_ids}
    with_files = [row.id for row in documents.values() if row.has_files]
    if with_files:
        for row in connection.execute(_SELECT_FILES, {"b_ids": with_files}):
            files[row.esp_report_id].append(row)

    created: dict[uuid.UUID, Report] = {}
    new: list[tuple[Report, dict[str, str]]] = []
    evidence_rows: list[EvidenceFile] = []
    custody_rows: list[CustodyEvent] = []
    file_evidence: list[dict[str, Any]] = []
    for esp_id in esp_ids:
        doc = documents[esp_id]
        actor = f"partner:{doc.partner_username}"
        data = mapping.report_create(doc.document, partner_name=doc.partner_name, esp_report_id=doc.report_id)
        report = reports.create_report(session, ctx.keys, data, source=Source.partner,
                                       codename_lookup=None, actor=actor, add=False)
        # Where the reported person's IP addresses point: a routing hint, never authoritative.
        mapping.apply_ip_country_hint(report, doc.document)
        # Victims' and intended recipients' identifiers, kept apart from the suspect's.
        mapping.apply_other_parties(report, doc.document)
        report.bundle_key = bundle_key(doc, files[esp_id])
        new.append((report, mapping.priority_extra(doc.document)))
        for row in files[esp_id]:
            found, received, described = _evidence(session, ctx, row, report.id, actor)
            evidence_rows.append(found)
            custody_rows += (received, described)
            file_evidence.append({"b_id": row.id, "b_evidence": found.id})
        audit.record(session, actor=actor, action="esp.finish", object_type="esp_report",
                     object_id=str(doc.report_id),
                     details={"report": str(report.id), "files": len(files[esp_id]),
                              "opened_at": doc.opened_at.isoformat()})
        created[esp_id] = report
    identifier_rows = triage.score_new_reports(session, new)
    # Parents before children: reports, then what refers to them.
    insert_new(session, [*created.values(), *identifier_rows, *evidence_rows, *custody_rows])
    connection.execute(_SET_REPORT, [{"b_id": esp_id, "b_report": report.id} for esp_id, report in created.items()])
    if file_evidence:
        connection.execute(_SET_EVIDENCE, file_evidence)
    _adopt_hashes(session, {esp_id: created[esp_id].id for esp_id, doc in documents.items() if doc.has_hashes})
    _bundle(session, [(documents[esp_id], report) for esp_id, report in created.items()])
    return {esp_id: (report, [f.file_id for f in files[esp_id]]) for esp_id, report in created.items()}


def _adopt_hashes(session: Session, filed: dict[uuid.UUID, uuid.UUID]) -> None:
    """Hash-only leads of the filed partner reports (those that sent hashes) become their
    Tipline reports' submitted hashes; the matching worker (which polls for them) matches them."""
    if filed:
        session.connection().execute(
            _SET_HASH_REPORT, [{"b_id": esp_id, "b_report": report_id} for esp_id, report_id in filed.items()])


def bundle_key(report: EspReport | AnyRow, files: list[AnyRow]) -> str | None:
    """Viral or meme reports (batchedReport) with the same files share a bundle; without
    files, a partner's batched reports of one day do."""
    if "batchedReport" not in report.document:
        return None
    if files:
        digest = hashlib.sha256("".join(sorted(f.sha256 for f in files)).encode()).hexdigest()
        return f"meme:files:{digest}"
    return f"meme:{report.partner_id.hex}:{report.opened_at.date().isoformat()}"


def _bundle(session: Session, filed: list[tuple[AnyRow, Report]]) -> None:
    """Merge each batched report into its bundle's open lead, or make it the lead. The lead
    is the oldest open report of the bundle filed before this batch, else this batch's first."""
    keyed = [(doc, report) for doc, report in filed if report.bundle_key is not None]
    if not keyed:
        return
    batch = [report.id for _doc, report in filed]
    leads: dict[str, Report] = {}
    for doc, report in keyed:
        key = cast(str, report.bundle_key)
        lead = leads.get(key) or session.execute(
            select(Report).where(Report.bundle_key == key, Report.merged_into_id.is_(None),
                                 Report.status.in_(triage.OPEN_STATUSES), Report.id.not_in(batch))
            .order_by(Report.created_at).limit(1)).scalar_one_or_none()
        if lead is None:
            leads[key] = cast(Report, session.get(Report, report.id))
            continue
        leads[key] = lead
        source = cast(Report, session.get(Report, report.id))
        correlation.merge_reports(session, target=lead, sources=[source],
                                  actor=f"system:bundle:{doc.report_id}")


def _evidence(session: Session, ctx: AppContext, row: AnyRow, tipline_report_id: uuid.UUID,
              actor: str) -> tuple[EvidenceFile, CustodyEvent, CustodyEvent]:
    """The staged file as an evidence file of the Tipline report, with its "received" event
    and a "described" event carrying what the partner said about it."""
    name = (crypto.unseal(ctx.keys.derive("esp-file-names"), row.name_sealed, NAME_CONTEXT).decode()
            if row.name_sealed else "")
    blob = StagedBlob(name=row.blob_name, path=ctx.blobs.path_for(row.blob_name),
                      wrapped_key=row.wrapped_key, size=row.size, media_type=row.media_type,
                      sha256=row.sha256, md5=row.md5, original_name=name)
    found, received = evidence.attach_blob(session, ctx.keys, blob, report_id=tipline_report_id,
                                           actor=actor, add=False)
    details = row.details or {}
    described = evidence.record_custody(session, found, action="described", actor=actor, add=False, details={
        "esp_file_id": row.file_id, "uploaded_at": row.uploaded_at.isoformat(),
        "viewed_by_esp": row.viewed_by_esp, "exif_viewed_by_esp": row.exif_viewed_by_esp,
        "publicly_available": row.publicly_available, "needs_legal_basis": row.needs_legal_basis,
        "relevance": details.get("fileRelevance", "Reported"),
        "industry_classification": details.get("industryClassification"),
    })
    return found, received, described
