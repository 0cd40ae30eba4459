"""Partner accounts and the report lifecycle of the ESP API: open → finished or retracted.

The routes read their bodies (and stream files into the vault) before they know what to
write; every change is then an operation of the process's group-commit writer
(tipline.batching), and finished reports are filed by esp.filing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, exists, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from tipline import clock, crypto
from tipline.accounts import passwords
from tipline.audit import service as audit
from tipline.batching import GroupCommitWriter, at_batch_end
from tipline.context import AppContext
from tipline.db import insert_new, new_id, transaction
from tipline.esp import filing
from tipline.esp.filing import NAME_CONTEXT, AnyRow
from tipline.esp.hashes import MAX_PER_REPORT, NewHash
from tipline.esp.models import EspFile, EspReport, EspReportState, Partner
from tipline.esp.xml import Code, EspError
from tipline.evidence.blobstore import StagedBlob
from tipline.matching import worker as hashing_worker
from tipline.matching.models import SubmittedHash

OPEN_FOR = timedelta(hours=24)
IDLE_FOR = timedelta(hours=1)
# An upload or file details rewrite the report's last_change_at only when it is older than
# this. Each rewrite was an UPDATE of an indexed column (a new row version in all six of the
# table's indexes) on every partner request; now a report is only locked and checked. The
# recorded time may lag the true last change by up to this much, so the report is kept that
# much longer: never deleted early.
CHANGE_RECORDED_EVERY = timedelta(minutes=1)
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


def authenticate(session: Session, username: str, password: str, *,
                 verified_hash: str | None = None) -> Partner | None:
    """The active partner with these credentials, or None (same work either way).

    `verified_hash`: the stored hash these same credentials matched before (the API keeps
    recent logins). While the account still holds that hash the answer cannot differ, so
    Argon2 is not run again; a changed password or a disabled account still refuses."""
    partner = session.execute(select(Partner).where(Partner.username == username)).scalar_one_or_none()
    if partner is not None and verified_hash is not None and hmac.compare_digest(partner.password_hash,
                                                                                 verified_hash):
        return partner if partner.active else None
    ok = passwords.verify_password(partner.password_hash if partner else None, password)
    return partner if ok and partner is not None and partner.active else None


# --- reports --------------------------------------------------------------------------------
#
# The lifecycle's writes are SQLAlchemy Core statements on the two tables below, not ORM
# objects: they run in the group-commit writer, where the ORM's per-object bookkeeping cost
# several times the statements themselves (docs/performance.md, partner API ingest).

_REPORTS = cast(Table, EspReport.__table__)
_FILES = cast(Table, EspFile.__table__)
_STATE = (_REPORTS.c.id, _REPORTS.c.report_id, _REPORTS.c.partner_id, _REPORTS.c.state,
          _REPORTS.c.opened_at, _REPORTS.c.last_change_at)


def expires_at(report: EspReport | AnyRow) -> datetime:
    return _expiry(report.opened_at, report.last_change_at)


def _expiry(opened_at: datetime, last_change_at: datetime) -> datetime:
    """24 h after opening or 1 h after the last change, whichever is later (with the minute
    by which the recorded change may lag the true one)."""
    return max(opened_at + OPEN_FOR, last_change_at + IDLE_FOR + CHANGE_RECORDED_EVERY)


# INSERT … ON CONFLICT DO NOTHING RETURNING, in each dialect's spelling (several rows: one
# multi-row statement).
_INSERT_REPORTS = {
    "sqlite": sqlite.insert(_REPORTS).on_conflict_do_nothing().returning(_REPORTS.c.id, _REPORTS.c.report_id),
    "postgresql": postgresql.insert(_REPORTS).on_conflict_do_nothing().returning(_REPORTS.c.id,
                                                                                _REPORTS.c.report_id),
}


@dataclass
class _Opening:
    values: dict[str, Any]
    number: int = 0
    created: bool = True


def _insert_reports(session: Session, items: list[_Opening]) -> None:
    """Insert these reports under random unused numbers, in one statement. A number drawn
    twice (in this batch, or already taken) is skipped by the unique index and redrawn."""
    statement = _INSERT_REPORTS[session.connection().dialect.name]
    waiting = {item.values["id"]: item for item in items}
    while waiting:
        # RETURNING, not rowcount: drivers disagree about rowcount after ON CONFLICT.
        rows = [{"report_id": secrets.randbelow(REPORT_ID_RANGE[1] - REPORT_ID_RANGE[0]) + REPORT_ID_RANGE[0],
                 **item.values} for item in waiting.values()]
        for row_id, number in session.connection().execute(statement, rows):
            waiting.pop(row_id).number = number


_OPENING_KEY = "tipline.esp.opening"


def _open_batch(session: Session) -> None:
    _insert_reports(session, session.info.pop(_OPENING_KEY, []))


# Built once: the hot path's statements only take parameters (no construction per call).
_SELECT_OWNED = (select(*_STATE).where(_REPORTS.c.report_id == bindparam("b_number"),
                                       _REPORTS.c.partner_id == bindparam("b_partner")).with_for_update())
_INSERT_FILE = insert(_FILES)
_SELECT_FILE = select(_FILES.c.id).where(_FILES.c.esp_report_id == bindparam("b_report"),
                                         _FILES.c.file_id == bindparam("b_file"))


def _owned(session: Session, partner_id: uuid.UUID, report_id: int) -> AnyRow:
    """The partner's report in any state, locked; unknown, foreign and expired ones are all 5001."""
    row = session.connection().execute(
        _SELECT_OWNED, {"b_number": report_id, "b_partner": partner_id}).one_or_none()
    if row is None or (row.state == EspReportState.open and expires_at(row) <= clock.now()):
        raise EspError(Code.report_not_found, "Report does not exist", report_id=report_id)
    return row


def _open(session: Session, partner_id: uuid.UUID, report_id: int) -> AnyRow:
    report = _owned(session, partner_id, report_id)
    if report.state == EspReportState.retracted:
        raise EspError(Code.already_retracted, "Report already retracted", report_id=report_id)
    if report.state == EspReportState.finished:
        raise EspError(Code.already_finished, "Report already finished", report_id=report_id)
    return report


# The partner's report, locked, only while it is open and unexpired (see _expiry).
_LOCK_OPEN = (select(_REPORTS.c.id, _REPORTS.c.report_id, _REPORTS.c.last_change_at)
              .where(_REPORTS.c.report_id == bindparam("b_number"), _REPORTS.c.partner_id == bindparam("b_partner"),
                     _REPORTS.c.state == EspReportState.open,
                     or_(_REPORTS.c.opened_at > bindparam("b_opened_after"),
                         _REPORTS.c.last_change_at > bindparam("b_changed_after")))
              .with_for_update())
# The same, only where that file is on the report (file details).
_LOCK_OPEN_WITH_FILE = _LOCK_OPEN.where(
    exists().where(_FILES.c.esp_report_id == _REPORTS.c.id, _FILES.c.file_id == bindparam("b_file")))
_SET_FILE_DETAILS = update(_FILES).where(_FILES.c.esp_report_id == bindparam("b_report"),
                                         _FILES.c.file_id == bindparam("b_file"))


def _lock_open(session: Session, statement: Any, partner_id: uuid.UUID, report_id: int, now: datetime,
               **params: Any) -> AnyRow | None:
    """Check and lock an open report in one statement (one round trip, where reading and
    then locking took two); None where the statement found nothing."""
    return session.connection().execute(statement, {
        "b_number": report_id, "b_partner": partner_id, **params, "b_opened_after": now - OPEN_FOR,
        "b_changed_after": now - IDLE_FOR - CHANGE_RECORDED_EVERY}).one_or_none()


def _record_change(session: Session, report: AnyRow, now: datetime) -> None:
    if report.last_change_at <= now - CHANGE_RECORDED_EVERY:
        _change(session, report.id, last_change_at=now)


_UPDATE_REPORT = update(_REPORTS).where(_REPORTS.c.id == bindparam("b_id"))


def _change(session: Session, row_id: uuid.UUID, **values: Any) -> None:
    session.connection().execute(_UPDATE_REPORT, {"b_id": row_id, **values})


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
    digest = reference_digest(document) if reference is not None else None

    def operation(session: Session) -> _Opening:
        now = clock.now()
        item = _Opening({"id": new_id(), "partner_id": partner_id, "state": EspReportState.open,
                         "opened_at": now, "last_change_at": now, "document": document,
                         "partner_reference": reference, "reference_digest": digest})
        if reference is None:
            # Numbered at the end of the batch, with the batch's other new reports.
            opening: list[_Opening] = session.info.setdefault(_OPENING_KEY, [])
            if not opening:
                at_batch_end(session, _open_batch)
            opening.append(item)
            return item
        # A retry can race its first attempt: lock the partner's row (other processes,
        # PostgreSQL); a report opened earlier in this batch is already in the table.
        session.connection().execute(select(Partner.id).where(Partner.id == partner_id).with_for_update())
        earlier = _by_reference(session, partner_id, reference)
        if earlier is not None:
            if earlier.reference_digest != digest:
                raise ReferenceConflict(Code.invalid_request, "Invalid request: this partner reference was "
                               "already used for a different report.", report_id=earlier.report_id)
            item.number, item.created = earlier.report_id, False
            return item
        _insert_reports(session, [item])
        return item

    item: _Opening = await ctx.esp_writer.run(operation)
    return item.number, item.created


def _by_reference(session: Session, partner_id: uuid.UUID, reference: str) -> AnyRow | None:
    """The live report opened under this reference (retracted and expired ones free it)."""
    rows = session.connection().execute(
        select(*_STATE, _REPORTS.c.reference_digest)
        .where(_REPORTS.c.partner_id == partner_id, _REPORTS.c.partner_reference == reference,
               _REPORTS.c.state != EspReportState.retracted)
        .order_by(_REPORTS.c.opened_at.desc()))
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
    name_sealed = (crypto.seal(ctx.keys.derive("esp-file-names"), blob.original_name.encode(), NAME_CONTEXT)
                   if blob.original_name else None)

    def operation(session: Session) -> Uploaded:
        now = clock.now()
        # Where nothing matched, the checks say why (unknown, foreign, expired, finished,
        # retracted). They read the clock again, later, so they refuse what the statement
        # refused; only a clock set back in between lets one pass.
        report = _lock_open(session, _LOCK_OPEN, partner_id, report_id, now) or _open(session, partner_id, report_id)
        _record_change(session, report, now)
        file_id = secrets.token_hex(16)
        session.connection().execute(_INSERT_FILE, {
            "id": new_id(), "file_id": file_id, "esp_report_id": report.id, "uploaded_at": now,
            "blob_name": blob.name, "wrapped_key": blob.wrapped_key, "size": blob.size,
            "media_type": blob.media_type, "sha256": blob.sha256, "md5": blob.md5, "name_sealed": name_sealed,
            "needs_legal_basis": True})
        return Uploaded(report.report_id, file_id, blob.md5)

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
        connection = session.connection()
        now = clock.now()
        # One statement checks the report and the file and locks the report.
        report = _lock_open(session, _LOCK_OPEN_WITH_FILE, partner_id, report_id, now, b_file=file_id)
        if report is None:
            # Refused: the checks say why, with nothing changed.
            report = _open(session, partner_id, report_id)
            if connection.execute(_SELECT_FILE, {"b_report": report.id, "b_file": file_id}).first() is None:
                raise EspError(Code.file_not_found, "File does not exist", report_id=report_id)
            # Only a clock set back between the two reads gets here.
        _record_change(session, report, now)
        viewed = details.get("fileViewedByEsp")
        connection.execute(_SET_FILE_DETAILS, {
            "b_report": report.id, "b_file": file_id, "details": details, "viewed_by_esp": viewed,
            "exif_viewed_by_esp": details.get("exifViewedByEsp"),
            "publicly_available": details.get("publiclyAvailable"), "needs_legal_basis": viewed is not True})
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
        insert_new(session, [SubmittedHash(id=new_id(), esp_report_id=report.id, kind=item.kind,
                                           value=item.value, frames=item.frames, quality=item.quality,
                                           label=item.label, submitted_at=now) for item in hashes])
        _change(session, report.id, last_change_at=now)
        return int(held) + len(hashes)

    count: int = await ctx.esp_writer.run(operation)
    return count


@dataclass(frozen=True)
class Finished:
    report_id: int
    file_ids: list[str]
    tipline_report_id: uuid.UUID
    reference: str


@dataclass
class _Finishing:
    partner_id: uuid.UUID
    report_id: int
    id: uuid.UUID | None = None
    done: Finished | None = None
    refusal: EspError | None = None


async def finish(ctx: AppContext, partner_id: uuid.UUID, report_id: int) -> Finished:
    """File the report: a Tipline report, its evidence and custody events, committed before
    the answer. The reports finished in one batch are claimed and filed together
    (`_file_batch`, esp.filing)."""

    def operation(session: Session) -> _Finishing:
        waiting: list[_Finishing] = session.info.setdefault(_FINISHING_KEY, [])
        if not waiting:
            at_batch_end(session, lambda s: _file_batch(s, ctx))
        item = _Finishing(partner_id, report_id)
        waiting.append(item)
        return item

    item: _Finishing = await ctx.esp_writer.run(operation)
    if item.refusal is not None:
        raise item.refusal
    assert item.done is not None
    hashing_worker.wake()  # committed: its files and hashes can be matched now
    return item.done


_FINISHING_KEY = "tipline.esp.finishing"
# Every open, unexpired report of the batch's (number, partner) pairs, finished at once.
# The numbers alone as well: with them both databases search the unique index on
# report_id (SQLite otherwise reads every open report).
_FINISH_MANY = (update(_REPORTS)
                .where(_REPORTS.c.report_id.in_(bindparam("b_numbers", expanding=True)),
                       tuple_(_REPORTS.c.report_id, _REPORTS.c.partner_id).in_(bindparam("b_pairs", expanding=True)),
                       _REPORTS.c.state == EspReportState.open,
                       or_(_REPORTS.c.opened_at > bindparam("b_opened_after"),
                           _REPORTS.c.last_change_at > bindparam("b_changed_after")))
                .values(state=EspReportState.finished, closed_at=bindparam("b_now"))
                .returning(_REPORTS.c.id, _REPORTS.c.report_id, _REPORTS.c.partner_id))


def _file_batch(session: Session, ctx: AppContext) -> None:
    """Claim the batch's finished reports in one statement, refuse the ones it could not
    claim (each with its precise reason, to its caller alone), and file the rest."""
    items: list[_Finishing] = session.info.pop(_FINISHING_KEY, [])
    now = clock.now()
    claimed = {(row.report_id, row.partner_id): row.id for row in session.connection().execute(_FINISH_MANY, {
        "b_numbers": [item.report_id for item in items],
        "b_pairs": [(item.report_id, item.partner_id) for item in items], "b_now": now,
        "b_opened_after": now - OPEN_FOR, "b_changed_after": now - IDLE_FOR - CHANGE_RECORDED_EVERY})}
    filing_now: list[_Finishing] = []
    for item in items:
        # A pair named twice in one batch is claimed by its first finish only.
        item.id = claimed.pop((item.report_id, item.partner_id), None)
        if item.id is None:
            # Not claimed: the checks say why (unknown, foreign, expired, finished,
            # retracted). They read the clock again, later, so they refuse what the
            # statement refused; only a clock set back in between lets one pass.
            try:
                report = _open(session, item.partner_id, item.report_id)
            except EspError as refusal:
                item.refusal = refusal
                continue
            _change(session, report.id, state=EspReportState.finished, closed_at=now)
            item.id = report.id
        filing_now.append(item)
    if not filing_now:
        return
    filed = filing.file_reports(session, ctx, [cast(uuid.UUID, item.id) for item in filing_now])
    for item in filing_now:
        created, file_ids = filed[cast(uuid.UUID, item.id)]
        item.done = Finished(item.report_id, file_ids, created.id, created.reference)


async def retract(ctx: AppContext, partner_id: uuid.UUID, report_id: int) -> int:
    """Cancel an open report: its document and files are removed, the number stays taken."""

    def operation(session: Session) -> list[str]:
        report = _open(session, partner_id, report_id)
        connection = session.connection()
        blob_names = list(connection.execute(
            select(_FILES.c.blob_name).where(_FILES.c.esp_report_id == report.id)).scalars())
        connection.execute(delete(_FILES).where(_FILES.c.esp_report_id == report.id))
        hashes = cast(Table, SubmittedHash.__table__)
        connection.execute(delete(hashes).where(hashes.c.esp_report_id == report.id))
        _change(session, report.id, state=EspReportState.retracted, closed_at=clock.now(), document={})
        audit.record(session, actor=f"partner:{partner_id}", action="esp.retract",
                     object_type="esp_report", object_id=str(report_id), details={"files": len(blob_names)})
        return blob_names

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
