"""Partner accounts and the report lifecycle of the ESP API: open → finished or retracted.

Each public function that changes something runs in a worker thread and opens its own
`transaction`, because the routes read their bodies (and stream files into the vault)
before they know what to write; see docs/architecture.md §3.1.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from tipline import clock, crypto
from tipline.accounts import passwords
from tipline.audit import service as audit
from tipline.batching import GroupCommitWriter, at_batch_end
from tipline.context import AppContext
from tipline.db import new_id, transaction
from tipline.esp import mapping
from tipline.esp.hashes import MAX_PER_REPORT, NewHash
from tipline.esp.models import EspFile, EspReport, EspReportState, Partner
from tipline.esp.xml import Code, EspError
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import StagedBlob
from tipline.matching import worker as hashing_worker
from tipline.matching.models import SubmittedHash
from tipline.reports import service as reports
from tipline.reports.enums import Source
from tipline.reports.models import Report
from tipline.triage import correlation
from tipline.triage import service as triage

OPEN_FOR = timedelta(hours=24)
IDLE_FOR = timedelta(hours=1)
NAME_CONTEXT = b"tipline:esp-file-name"
REPORT_ID_RANGE = (100_000_000, 999_999_999)
logger = logging.getLogger(__name__)


# --- partners -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def create_partner(session: Session, *, name: str, actor: str) -> Credentials:
    """A new partner account; the password is returned here once and stored only hashed."""
    name = name.strip()
    if not name or len(name) > 200:
        raise EspError(Code.invalid_request, "A partner name of 1 to 200 characters is needed.")
    username = "esp-" + secrets.token_hex(6)
    password = secrets.token_urlsafe(24)
    partner = Partner(name=name, username=username, password_hash=passwords.hash_password(password),
                      active=True, created_at=clock.now())
    session.add(partner)
    session.flush()
    audit.record(session, actor=actor, action="partner.create", object_type="partner",
                 object_id=str(partner.id), details={"name": name, "username": username})
    return Credentials(username, password)


def list_partners(session: Session) -> list[Partner]:
    return list(session.execute(select(Partner).order_by(Partner.created_at)).scalars())


def _partner_named(session: Session, username: str) -> Partner:
    partner = session.execute(select(Partner).where(Partner.username == username)).scalar_one_or_none()
    if partner is None:
        raise EspError(Code.invalid_request, f"No partner account with the username {username!r}.")
    return partner


def set_active(session: Session, username: str, *, active: bool, actor: str) -> Partner:
    """Disable (or enable again) a partner account; its reports stay."""
    partner = _partner_named(session, username)
    partner.active = active
    audit.record(session, actor=actor, action="partner.enable" if active else "partner.disable",
                 object_type="partner", object_id=str(partner.id), details={"username": username})
    return partner


def reset_password(session: Session, username: str, *, actor: str) -> Credentials:
    """A new password for the account (shown once); the old one stops working."""
    partner = _partner_named(session, username)
    password = secrets.token_urlsafe(24)
    partner.password_hash = passwords.hash_password(password)
    audit.record(session, actor=actor, action="partner.reset_password", object_type="partner",
                 object_id=str(partner.id), details={"username": username})
    return Credentials(username, password)


def authenticate(session: Session, username: str, password: str) -> Partner | None:
    """The active partner with these credentials, or None (same work either way)."""
    partner = session.execute(select(Partner).where(Partner.username == username)).scalar_one_or_none()
    ok = passwords.verify_password(partner.password_hash if partner else None, password)
    return partner if ok and partner is not None and partner.active else None


# --- reports --------------------------------------------------------------------------------

def expires_at(report: EspReport) -> datetime:
    return _expiry(report.opened_at, report.last_change_at)


def _expiry(opened_at: datetime, last_change_at: datetime) -> datetime:
    """24 h after opening or 1 h after the last change, whichever is later."""
    return max(opened_at + OPEN_FOR, last_change_at + IDLE_FOR)


def _new_report_id(session: Session) -> int:
    while True:
        candidate = secrets.randbelow(REPORT_ID_RANGE[1] - REPORT_ID_RANGE[0]) + REPORT_ID_RANGE[0]
        taken = session.execute(select(EspReport.id).where(EspReport.report_id == candidate)).first()
        # The unique index is the backstop for a number drawn twice within one batch.
        if taken is None:
            return candidate


def _owned(session: Session, partner_id: uuid.UUID, report_id: int, *, lock: bool = True) -> EspReport:
    """The partner's report in any state; unknown, foreign and expired ones are all 5001."""
    query = select(EspReport).where(EspReport.report_id == report_id, EspReport.partner_id == partner_id)
    report = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if report is None or (report.state == EspReportState.open and expires_at(report) <= clock.now()):
        raise EspError(Code.report_not_found, "Report does not exist", report_id=report_id)
    return report


def _open(session: Session, partner_id: uuid.UUID, report_id: int) -> EspReport:
    report = _owned(session, partner_id, report_id)
    if report.state == EspReportState.retracted:
        raise EspError(Code.already_retracted, "Report already retracted", report_id=report_id)
    if report.state == EspReportState.finished:
        raise EspError(Code.already_finished, "Report already finished", report_id=report_id)
    return report


# Every change below runs as an operation of the group-commit writer (tipline.batching): it
# checks everything first, then changes the session, and never flushes by itself.

def writer(sessions: sessionmaker[Session]) -> GroupCommitWriter:
    return GroupCommitWriter(sessions, refusals=(EspError,))


class ReferenceConflict(EspError):
    """The partner reference already names a different report document (HTTP 409)."""


def reference_digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def open_report(ctx: AppContext, partner_id: uuid.UUID, document: dict[str, Any],
                reference: str | None = None) -> tuple[int, bool]:
    """Open a report; returns (reportId, created). With a partner reference the call is
    idempotent: the same reference and document answer the report opened the first time."""

    def operation(session: Session) -> tuple[int, bool]:
        digest = reference_digest(document) if reference is not None else None
        if reference is not None:
            # A retry can race its first attempt: lock the partner's row (other processes,
            # PostgreSQL) and flush, so that a report opened earlier in this batch is seen.
            session.execute(select(Partner.id).where(Partner.id == partner_id).with_for_update())
            session.flush()
            earlier = _by_reference(session, partner_id, reference)
            if earlier is not None:
                if earlier.reference_digest != digest:
                    raise ReferenceConflict(Code.invalid_request, "Invalid request: this partner reference was "
                                   "already used for a different report.", report_id=earlier.report_id)
                return earlier.report_id, False
        now = clock.now()
        report = EspReport(id=new_id(), report_id=_new_report_id(session), partner_id=partner_id,
                           state=EspReportState.open, opened_at=now, last_change_at=now,
                           document=document, partner_reference=reference, reference_digest=digest)
        session.add(report)
        return report.report_id, True

    result: tuple[int, bool] = await ctx.esp_writer.run(operation)
    return result


def _by_reference(session: Session, partner_id: uuid.UUID, reference: str) -> EspReport | None:
    """The live report opened under this reference (retracted and expired ones free it)."""
    rows = session.execute(
        select(EspReport).where(EspReport.partner_id == partner_id, EspReport.partner_reference == reference,
                                EspReport.state != EspReportState.retracted)
        .order_by(EspReport.opened_at.desc())).scalars()
    for report in rows:
        if report.state == EspReportState.open and expires_at(report) <= clock.now():
            continue
        return report
    return None


@dataclass(frozen=True)
class Uploaded:
    report_id: int
    file_id: str
    md5: str


async def add_file(ctx: AppContext, partner_id: uuid.UUID, report_id: int, blob: StagedBlob) -> Uploaded:
    """Record a staged blob on an open report; the blob is removed again on any refusal."""

    def operation(session: Session) -> Uploaded:
        report = _open(session, partner_id, report_id)
        now = clock.now()
        row = EspFile(
            id=new_id(), file_id=secrets.token_hex(16), esp_report_id=report.id, uploaded_at=now,
            blob_name=blob.name, wrapped_key=blob.wrapped_key, size=blob.size,
            media_type=blob.media_type, sha256=blob.sha256, md5=blob.md5,
            name_sealed=crypto.seal(ctx.keys.derive("esp-file-names"), blob.original_name.encode(),
                                    NAME_CONTEXT) if blob.original_name else None,
            needs_legal_basis=True,
        )
        session.add(row)
        report.last_change_at = now
        return Uploaded(report.report_id, row.file_id, blob.md5)

    try:
        done: Uploaded = await ctx.esp_writer.run(operation)
    except BaseException:
        ctx.blobs.delete(blob.name)
        raise
    return done


async def set_file_details(ctx: AppContext, partner_id: uuid.UUID, details: dict[str, Any]) -> tuple[int, str]:
    report_id, file_id = int(details["reportId"]), str(details["fileId"])
    _check_supplemental(details, report_id)

    def operation(session: Session) -> tuple[int, str]:
        report = _open(session, partner_id, report_id)
        row = session.execute(select(EspFile).where(EspFile.esp_report_id == report.id,
                                                    EspFile.file_id == file_id)).scalar_one_or_none()
        if row is None:
            raise EspError(Code.file_not_found, "File does not exist", report_id=report_id)
        row.details = details
        row.viewed_by_esp = details.get("fileViewedByEsp")
        row.exif_viewed_by_esp = details.get("exifViewedByEsp")
        row.publicly_available = details.get("publiclyAvailable")
        row.needs_legal_basis = row.viewed_by_esp is not True
        report.last_change_at = clock.now()
        return report_id, file_id

    result: tuple[int, str] = await ctx.esp_writer.run(operation)
    return result


def _check_supplemental(details: dict[str, Any], report_id: int) -> None:
    if details.get("fileRelevance") != "Supplemental Reported":
        return
    meme = details.get("potentialMeme") or "potentialMeme" in (details.get("fileAnnotations") or {})
    if meme or "industryClassification" in details:
        raise EspError(Code.validation_failed,
                       "Validation failed: fileDetails of a Supplemental Reported file may not carry "
                       "industryClassification or potentialMeme.", report_id=report_id)


async def add_hashes(ctx: AppContext, partner_id: uuid.UUID, report_id: int, hashes: list[NewHash]) -> int:
    """Add hash-only leads to an open report (esp.hashes); returns how many it now has."""

    def operation(session: Session) -> int:
        report = _open(session, partner_id, report_id)
        held = session.execute(select(func.count()).select_from(SubmittedHash)
                               .where(SubmittedHash.esp_report_id == report.id)).scalar_one()
        if held + len(hashes) > MAX_PER_REPORT:
            raise EspError(Code.validation_failed, f"Validation failed: a report holds at most "
                           f"{MAX_PER_REPORT} hashes ({held} already).", report_id=report_id)
        now = clock.now()
        session.add_all(SubmittedHash(id=new_id(), esp_report_id=report.id, kind=item.kind,
                                      value=item.value, frames=item.frames, quality=item.quality,
                                      label=item.label, submitted_at=now) for item in hashes)
        report.last_change_at = now
        return int(held) + len(hashes)

    count: int = await ctx.esp_writer.run(operation)
    return count


def _files(session: Session, report: EspReport) -> list[EspFile]:
    return list(session.execute(select(EspFile).where(EspFile.esp_report_id == report.id)
                                .order_by(EspFile.uploaded_at, EspFile.file_id)).scalars())


@dataclass(frozen=True)
class Finished:
    report_id: int
    file_ids: list[str]
    tipline_report_id: uuid.UUID
    reference: str


@dataclass
class _Finishing:
    report: EspReport
    partner_id: uuid.UUID
    done: Finished | None = None
    created: Report | None = None


async def finish(ctx: AppContext, partner_id: uuid.UUID, report_id: int) -> Finished:
    """File the report: a Tipline report, its evidence and custody events, committed before
    the answer. The reports finished in one batch are filed together (`_file_batch`)."""

    def operation(session: Session) -> _Finishing:
        report = _open(session, partner_id, report_id)
        report.state = EspReportState.finished
        report.closed_at = clock.now()
        waiting: list[_Finishing] = session.info.setdefault(_FINISHING_KEY, [])
        if not waiting:
            at_batch_end(session, lambda s: _file_batch(s, ctx))
        item = _Finishing(report, partner_id)
        waiting.append(item)
        return item

    item: _Finishing = await ctx.esp_writer.run(operation)
    assert item.done is not None
    hashing_worker.wake()  # committed: its files and hashes can be matched now
    return item.done


_FINISHING_KEY = "tipline.esp.finishing"


def _file_batch(session: Session, ctx: AppContext) -> None:
    items: list[_Finishing] = session.info.pop(_FINISHING_KEY, [])
    # Files uploaded earlier in the same batch must be seen.
    session.flush()
    files: dict[uuid.UUID, list[EspFile]] = {item.report.id: [] for item in items}
    for row in session.execute(select(EspFile).where(EspFile.esp_report_id.in_(list(files)))
                               .order_by(EspFile.uploaded_at, EspFile.file_id)).scalars():
        files[row.esp_report_id].append(row)
    partners = {p.id: p for p in session.execute(
        select(Partner).where(Partner.id.in_({item.partner_id for item in items}))).scalars()}
    new: list[tuple[Report, dict[str, str]]] = []
    attached: list[tuple[EspFile, uuid.UUID]] = []
    for item in items:
        report, partner = item.report, partners[item.partner_id]
        actor = f"partner:{partner.username}"
        data = mapping.report_create(report.document, partner_name=partner.name, esp_report_id=report.report_id)
        created = reports.create_report(session, ctx.keys, data, source=Source.partner,
                                        codename_lookup=None, actor=actor)
        # Where the reported person's IP addresses point: a routing hint, never authoritative.
        mapping.apply_ip_country_hint(created, report.document)
        # Victims' and intended recipients' identifiers, kept apart from the suspect's.
        mapping.apply_other_parties(created, report.document)
        new.append((created, mapping.priority_extra(report.document)))
        attached += [(row, _attach(session, ctx, row, created.id, actor)) for row in files[report.id]]
        audit.record(session, actor=actor, action="esp.finish", object_type="esp_report",
                     object_id=str(report.report_id),
                     details={"report": str(created.id), "files": len(files[report.id]),
                              "opened_at": report.opened_at.isoformat()})
        item.created = created
        item.done = Finished(report.report_id, [f.file_id for f in files[report.id]], created.id,
                             created.reference)
    triage.on_new_reports(session, new)
    _adopt_hashes(session, {item.report.id: item.created.id for item in items if item.created})
    _bundle(session, [(item.report, item.created) for item in items if item.created is not None], files)
    for row, evidence_id in attached:
        row.evidence_id = evidence_id
    for item in items:
        assert item.done is not None
        item.report.tipline_report_id = item.done.tipline_report_id


def _adopt_hashes(session: Session, filed: dict[uuid.UUID, uuid.UUID]) -> None:
    """Hash-only leads of the filed partner reports become their Tipline reports'
    submitted hashes; the matching worker (which polls for them) matches them."""
    rows = session.execute(select(SubmittedHash).where(
        SubmittedHash.esp_report_id.in_(list(filed)))).scalars()
    for row in rows:
        assert row.esp_report_id is not None
        row.report_id = filed[row.esp_report_id]


def bundle_key(report: EspReport, files: list[EspFile]) -> str | None:
    """Viral or meme reports (batchedReport) with the same files share a bundle; without
    files, a partner's batched reports of one day do."""
    if "batchedReport" not in report.document:
        return None
    if files:
        digest = hashlib.sha256("".join(sorted(f.sha256 for f in files)).encode()).hexdigest()
        return f"meme:files:{digest}"
    return f"meme:{report.partner_id.hex}:{report.opened_at.date().isoformat()}"


def _bundle(session: Session, finished: list[tuple[EspReport, Report]],
            files: dict[uuid.UUID, list[EspFile]]) -> None:
    """Merge each batched report into its bundle's open lead, or make it the lead."""
    leads: dict[str, Report] = {}
    for esp_report, created in finished:
        key = bundle_key(esp_report, files[esp_report.id])
        if key is None:
            continue
        created.bundle_key = key
        lead = leads.get(key) or session.execute(
            select(Report).where(Report.bundle_key == key, Report.merged_into_id.is_(None),
                                 Report.status.in_(triage.OPEN_STATUSES), Report.id != created.id)
            .order_by(Report.created_at).limit(1)).scalar_one_or_none()
        if lead is None:
            leads[key] = created
            continue
        correlation.merge_reports(session, target=lead, sources=[created],
                                  actor=f"system:bundle:{esp_report.report_id}")


def _attach(session: Session, ctx: AppContext, row: EspFile, tipline_report_id: uuid.UUID,
            actor: str) -> uuid.UUID:
    name = (crypto.unseal(ctx.keys.derive("esp-file-names"), row.name_sealed, NAME_CONTEXT).decode()
            if row.name_sealed else "")
    blob = StagedBlob(name=row.blob_name, path=ctx.blobs.path_for(row.blob_name),
                      wrapped_key=row.wrapped_key, size=row.size, media_type=row.media_type,
                      sha256=row.sha256, md5=row.md5, original_name=name)
    found = evidence.attach_blob(session, ctx.keys, blob, report_id=tipline_report_id, actor=actor)
    evidence.record_custody(session, found, action="described", actor=actor, details={
        "esp_file_id": row.file_id, "uploaded_at": row.uploaded_at.isoformat(),
        "viewed_by_esp": row.viewed_by_esp, "exif_viewed_by_esp": row.exif_viewed_by_esp,
        "publicly_available": row.publicly_available, "needs_legal_basis": row.needs_legal_basis,
        "relevance": (row.details or {}).get("fileRelevance", "Reported"),
        "industry_classification": (row.details or {}).get("industryClassification"),
    })
    return found.id


async def retract(ctx: AppContext, partner_id: uuid.UUID, report_id: int) -> int:
    """Cancel an open report: its document and files are removed, the number stays taken."""

    def operation(session: Session) -> list[str]:
        report = _open(session, partner_id, report_id)
        files = _files(session, report)
        for row in files:
            session.delete(row)
        session.execute(delete(SubmittedHash).where(SubmittedHash.esp_report_id == report.id))
        report.state = EspReportState.retracted
        report.closed_at = clock.now()
        report.document = {}
        audit.record(session, actor=f"partner:{partner_id}", action="esp.retract",
                     object_type="esp_report", object_id=str(report_id), details={"files": len(files)})
        return [f.blob_name for f in files]

    blob_names: list[str] = await ctx.esp_writer.run(operation)
    for name in blob_names:
        ctx.blobs.delete(name)
    return report_id


def purge_expired(ctx: AppContext) -> int:
    """Delete open reports past their expiry, with their staged files; returns how many.
    Safe to run from several server processes at once: rows already gone are skipped."""
    with transaction(ctx.sessions) as session:
        candidates = session.execute(select(EspReport.id, EspReport.opened_at, EspReport.last_change_at).where(
            EspReport.state == EspReportState.open,
            EspReport.last_change_at < clock.now() - IDLE_FOR)).all()
        now = clock.now()
        expired = [row.id for row in candidates if _expiry(row.opened_at, row.last_change_at) <= now]
        blob_names: list[str] = []
        if expired:
            blob_names = list(session.execute(
                select(EspFile.blob_name).where(EspFile.esp_report_id.in_(expired))).scalars())
            session.execute(delete(EspFile).where(EspFile.esp_report_id.in_(expired)))
            session.execute(delete(SubmittedHash).where(SubmittedHash.esp_report_id.in_(expired)))
            session.execute(delete(EspReport).where(EspReport.id.in_(expired),
                                                    EspReport.state == EspReportState.open))
    for name in blob_names:
        ctx.blobs.delete(name)
    return len(expired)


async def purge_expired_every(ctx: AppContext, seconds: float) -> None:
    """The server's own schedule for `purge_expired` (a task of the app's lifespan)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            purged = await asyncio.to_thread(purge_expired, ctx)
        except Exception:  # a failed round is logged; the next one tries again
            logger.exception("purging expired partner reports failed")
            continue
        if purged:
            logger.info("purged %d expired partner report(s)", purged)


def evidence_needing_legal_basis(session: Session, evidence_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Partner files the partner never viewed: staff must record a legal basis (such as a
    warrant reference) before anyone opens them."""
    if not evidence_ids:
        return set()
    rows = session.execute(
        select(EspFile.evidence_id).where(EspFile.evidence_id.in_(evidence_ids),
                                          EspFile.needs_legal_basis.is_(True))
    ).scalars()
    return {row for row in rows if row is not None}
