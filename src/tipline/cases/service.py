"""Referral of reports to agencies and the agency's follow-up, step by step.

Each step changes the report's status only through `reports.service.change_status`, writes
a case event (the timeline on the case page) and an audit row, in the caller's transaction.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from tipline import clock
from tipline.accounts.models import Agency, User
from tipline.accounts.permissions import Permission, Role
from tipline.accounts.service import StaffUser
from tipline.audit import service as audit
from tipline.cases.models import (
    LIVE_STATUSES,
    CaseEvent,
    CaseOutcome,
    CollectedItem,
    ItemCustodyEvent,
    Referral,
    ReferralStatus,
)
from tipline.errors import Conflict, InvalidInput, NotFound
from tipline.evidence import service as evidence
from tipline.evidence.models import CustodyEvent
from tipline.i18n import _
from tipline.reports import service as reports
from tipline.reports.models import Report
from tipline.reports.states import TRANSITIONS, ReportStatus

MAX_TEXT = 5000
# The steps an agency takes after accepting, in order.
LIFECYCLE = (ReportStatus.investigating, ReportStatus.evidence_collected,
             ReportStatus.prosecution, ReportStatus.closed)
# Reports that can still be referred (more agencies may be added while the case is open).
REFERABLE = (ReportStatus.received, ReportStatus.in_review, ReportStatus.referred,
             ReportStatus.investigating, ReportStatus.evidence_collected, ReportStatus.prosecution)
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Custody actions that mean a person saw a file's content ("revealed": known material).
VIEWING_ACTIONS = ("viewed", "revealed")


def _not_found() -> NotFound:
    return NotFound(_("There is no page at this address."))


# --- who may see what -------------------------------------------------------------------

def agency_has_report(session: Session, agency_id: uuid.UUID, report_id: uuid.UUID) -> bool:
    """True if the report is referred to the agency and the agency has not declined it."""
    query = select(exists().where(
        Referral.agency_id == agency_id, Referral.report_id == report_id,
        Referral.status.in_(LIVE_STATUSES)))
    return bool(session.execute(query).scalar())


def _may_see_referral(staff: StaffUser, referral: Referral) -> bool:
    if staff.role == Role.agency_officer:
        return staff.agency_id is not None and referral.agency_id == staff.agency_id
    return staff.can(Permission.case_view)


def access_referral(session: Session, staff: StaffUser, referral_id: uuid.UUID) -> Referral:
    """The referral, if this person may see it; NotFound for missing and forbidden alike."""
    referral = session.get(Referral, referral_id)
    if referral is None or not _may_see_referral(staff, referral):
        raise _not_found()
    return referral


def access_item(session: Session, staff: StaffUser, referral: Referral, item_id: uuid.UUID) -> CollectedItem:
    item = session.get(CollectedItem, item_id)
    if item is None or item.referral_id != referral.id:
        raise _not_found()
    return item


# --- lists for the pages ----------------------------------------------------------------

@dataclass(frozen=True)
class CaseRow:
    referral: Referral
    reference: str
    report_status: ReportStatus
    agency_name: str


def list_cases(session: Session, staff: StaffUser, *, status: str = "",
               report_id: uuid.UUID | None = None, limit: int = 500) -> list[CaseRow]:
    """Referrals this person may see, newest first: an officer only their agency's."""
    query = (select(Referral, Report.reference, Report.status, Agency.name)
             .join(Report, Report.id == Referral.report_id)
             .join(Agency, Agency.id == Referral.agency_id))
    if staff.role == Role.agency_officer:
        if staff.agency_id is None:
            return []
        query = query.where(Referral.agency_id == staff.agency_id)
    elif not staff.can(Permission.case_view):
        return []
    if status:
        try:
            query = query.where(Referral.status == ReferralStatus(status))
        except ValueError as exc:
            raise InvalidInput(_("Unknown status."), field="status") from exc
    if report_id is not None:
        query = query.where(Referral.report_id == report_id)
    rows = session.execute(query.order_by(Referral.referred_at.desc()).limit(limit))
    return [CaseRow(ref, reference, report_status, name) for ref, reference, report_status, name in rows]


def events(session: Session, referral_id: uuid.UUID) -> list[CaseEvent]:
    return list(session.execute(select(CaseEvent).where(CaseEvent.referral_id == referral_id)
                                .order_by(CaseEvent.at, CaseEvent.id)).scalars())


def items(session: Session, referral_id: uuid.UUID) -> list[CollectedItem]:
    return list(session.execute(select(CollectedItem).where(CollectedItem.referral_id == referral_id)
                                .order_by(CollectedItem.recorded_at, CollectedItem.id)).scalars())


def item_custody(session: Session, item_ids: list[uuid.UUID]) -> list[ItemCustodyEvent]:
    if not item_ids:
        return []
    return list(session.execute(select(ItemCustodyEvent).where(ItemCustodyEvent.item_id.in_(item_ids))
                                .order_by(ItemCustodyEvent.at, ItemCustodyEvent.id)).scalars())


def viewed_evidence(session: Session, evidence_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The files someone here has opened (a recorded reveal), among these."""
    if not evidence_ids:
        return set()
    rows = session.execute(select(CustodyEvent.evidence_id).where(
        CustodyEvent.evidence_id.in_(evidence_ids), CustodyEvent.action.in_(VIEWING_ACTIONS)))
    return set(rows.scalars())


def user_names(session: Session, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {row[0]: row[1] for row in rows}


# --- steps ------------------------------------------------------------------------------

def _event(session: Session, referral: Referral, kind: str, actor: str,
           details: dict[str, Any] | None = None) -> CaseEvent:
    event = CaseEvent(referral_id=referral.id, at=clock.now(), actor=actor, kind=kind,
                      details=details or {})
    session.add(event)
    audit.record(session, actor=actor, action=f"case.{kind}", object_type="referral",
                 object_id=str(referral.id),
                 details={"report": str(referral.report_id), "agency": str(referral.agency_id),
                          **(details or {})})
    return event


def record_event(session: Session, referral_id: uuid.UUID, kind: str, actor: str,
                 details: dict[str, Any] | None = None) -> None:
    """A step recorded from outside a request (e.g. the result of sending a notice)."""
    referral = session.get(Referral, referral_id)
    if referral is None:
        raise _not_found()
    _event(session, referral, kind, actor, details)


def _text(value: str, field: str, message: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput(message, field=field)
    if len(text) > MAX_TEXT:
        raise InvalidInput(_("This is too long: at most %(n)s characters.") % {"n": MAX_TEXT}, field=field)
    return text


@dataclass(frozen=True)
class ReferralChoice:
    agency_id: uuid.UUID
    reason: str
    suggested: bool = False


def refer_report(session: Session, report: Report, choices: list[ReferralChoice], *,
                 staff: StaffUser) -> list[Referral]:
    """Refer the report to one or more agencies, each with the reason it was chosen."""
    if not choices:
        raise InvalidInput(_("Choose at least one agency."), field="agencies")
    if report.status not in REFERABLE or report.merged_into_id is not None:
        raise Conflict(_("This report can no longer be referred."))
    now = clock.now()
    created = []
    # Referral never requires anyone to have viewed the files (known material is referred
    # unseen): the record says, per file, whether anyone here did.
    files = evidence.list_for_report(session, report.id)
    viewed = viewed_evidence(session, [f.id for f in files])
    for choice in choices:
        agency = session.get(Agency, choice.agency_id)
        if agency is None or not agency.active:
            raise InvalidInput(_("No such agency."), field="agencies")
        reason = _text(choice.reason, "reason",
                       _("Say why %(agency)s should handle this report.") % {"agency": agency.name})
        if agency_has_report(session, agency.id, report.id):
            raise Conflict(_("This report is already referred to %(agency)s.") % {"agency": agency.name})
        referral = Referral(report_id=report.id, agency_id=agency.id, status=ReferralStatus.pending,
                            reason=reason, suggested=choice.suggested, referred_by_id=staff.id,
                            referred_at=now)
        session.add(referral)
        session.flush()
        _event(session, referral, "referred", staff.actor,
               {"agency_name": agency.name, "reason": reason, "suggested": choice.suggested,
                "files_not_viewed": len(files) - len(viewed)})
        # Referral hands the evidence on: a custody event for every file.
        for item in files:
            evidence.record_custody(session, item, action="referred", actor=staff.actor,
                                    details={"agency": agency.name, "referral": str(referral.id),
                                             "viewed": item.id in viewed})
        created.append(referral)
    if report.status == ReportStatus.received:
        reports.change_status(session, report, ReportStatus.in_review, actor=staff.actor)
        report.triaged_at = report.triaged_at or now
    if report.status == ReportStatus.in_review:
        reports.change_status(session, report, ReportStatus.referred, actor=staff.actor,
                              reason="referred to " + ", ".join(str(r.agency_id) for r in created))
    report.referred_at = report.referred_at or now
    return created


def _report_of(session: Session, referral: Referral) -> Report:
    report = session.get(Report, referral.report_id)
    if report is None:  # a foreign key makes this impossible
        raise _not_found()
    return report


def accept(session: Session, referral: Referral, *, staff: StaffUser, note: str = "") -> None:
    """The agency takes the case; the report moves on to "investigating"."""
    if referral.status != ReferralStatus.pending:
        raise Conflict(_("This referral was already answered."))
    referral.status = ReferralStatus.accepted
    referral.decided_by_id = staff.id
    referral.decided_at = clock.now()
    referral.decision_reason = note.strip()[:MAX_TEXT]
    report = _report_of(session, referral)
    _event(session, referral, "accepted", staff.actor, {"note": referral.decision_reason})
    if report.status == ReportStatus.referred:
        reports.change_status(session, report, ReportStatus.investigating, actor=staff.actor,
                              reason="accepted by the agency")
        _event(session, referral, "status", staff.actor, {"to": ReportStatus.investigating.value})


def decline(session: Session, referral: Referral, *, staff: StaffUser, reason: str) -> None:
    """The agency will not take the case. With no other agency on it, the report goes
    back to the analysts' queue."""
    text = _text(reason, "reason", _("Say why the referral is declined."))
    if referral.status != ReferralStatus.pending:
        raise Conflict(_("This referral was already answered."))
    referral.status = ReferralStatus.declined
    referral.decided_by_id = staff.id
    referral.decided_at = clock.now()
    referral.decision_reason = text
    session.flush()
    _event(session, referral, "declined", staff.actor, {"reason": text})
    report = _report_of(session, referral)
    others_live = session.execute(select(exists().where(
        Referral.report_id == report.id, Referral.id != referral.id,
        Referral.status.in_(LIVE_STATUSES)))).scalar()
    if not others_live and report.status == ReportStatus.referred:
        reports.change_status(session, report, ReportStatus.in_review, actor=staff.actor,
                              reason="referral declined: " + text)


def next_steps(report: Report) -> list[ReportStatus]:
    """The lifecycle steps the report may take from where it is."""
    return [s for s in LIFECYCLE if s in TRANSITIONS[report.status]]


def advance(session: Session, referral: Referral, target: str, *, staff: StaffUser,
            outcome: str = "", note: str = "") -> ReportStatus:
    """Move the case one step: investigating → evidence collected → prosecution → closed
    (closing needs an outcome)."""
    if referral.status != ReferralStatus.accepted:
        raise Conflict(_("Accept the referral first."))
    try:
        status = ReportStatus(target)
    except ValueError as exc:
        raise InvalidInput(_("Choose the next step."), field="target") from exc
    report = _report_of(session, referral)
    if status not in next_steps(report):
        raise Conflict(_("The case cannot move from this status to that one."))
    chosen: CaseOutcome | None = None
    if status == ReportStatus.closed:
        try:
            chosen = CaseOutcome(outcome)
        except ValueError as exc:
            raise InvalidInput(_("Choose the outcome of the case."), field="outcome") from exc
    text = note.strip()[:MAX_TEXT]
    reports.change_status(session, report, status, actor=staff.actor, reason=text)
    now = clock.now()
    if chosen is not None:
        report.closed_at = now
        referral.outcome = chosen
        referral.closed_at = now
    details: dict[str, Any] = {"to": status.value, "note": text}
    if chosen is not None:
        details["outcome"] = chosen.value
    _event(session, referral, "status", staff.actor, details)
    return status


# --- evidence the agency collects --------------------------------------------------------

def _when(value: str) -> datetime:
    """A date and time typed as "YYYY-MM-DDTHH:MM" (UTC); empty means now."""
    if not value.strip():
        return clock.now()
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(_("Give the date and time as YYYY-MM-DD HH:MM (UTC)."), field="collected_at") from exc
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > clock.now():
        raise InvalidInput(_("The time of collection cannot be in the future."), field="collected_at")
    return moment


def record_custody(session: Session, item: CollectedItem, *, action: str, actor: str,
                   details: dict[str, Any] | None = None) -> ItemCustodyEvent:
    event = ItemCustodyEvent(item_id=item.id, at=clock.now(), action=action, actor=actor,
                             sha256=item.sha256, details=json.dumps(details or {}, sort_keys=True))
    session.add(event)
    audit.record(session, actor=actor, action=f"custody.{action}", object_type="collected_item",
                 object_id=str(item.id), details={"sha256": item.sha256, **(details or {})})
    return event


@dataclass(frozen=True)
class ItemInput:
    description: str
    acquired_where: str
    acquired_how: str
    sha256: str
    collected_by: str = ""
    collected_at: str = ""


def record_item(session: Session, referral: Referral, data: ItemInput, *,
                staff: StaffUser) -> CollectedItem:
    """Record one item the agency collected; its first custody event is "collected"."""
    if referral.status != ReferralStatus.accepted:
        raise Conflict(_("Accept the referral first."))
    report = _report_of(session, referral)
    if report.status == ReportStatus.closed:
        raise Conflict(_("The case is closed."))
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for field, value, message in (
        ("description", data.description, _("Describe the item.")),
        ("acquired_where", data.acquired_where, _("Say where the item was acquired.")),
        ("acquired_how", data.acquired_how, _("Say how the item was acquired.")),
    ):
        try:
            values[field] = _text(value, field, message)
        except InvalidInput as exc:
            errors[field] = exc.message
    digest = data.sha256.strip().lower()
    if not _SHA256.fullmatch(digest):
        errors["sha256"] = _("Give the SHA-256 digest as 64 hexadecimal characters.")
    try:
        collected_at = _when(data.collected_at)
    except InvalidInput as exc:
        errors["collected_at"] = exc.message
    if errors:
        raise InvalidInput(next(iter(errors.values())), errors=errors)
    item = CollectedItem(
        referral_id=referral.id, report_id=referral.report_id, sha256=digest,
        collected_by=(data.collected_by.strip() or staff.display_name)[:200],
        collected_at=collected_at, recorded_by_id=staff.id, recorded_at=clock.now(), **values)
    session.add(item)
    session.flush()
    record_custody(session, item, action="collected", actor=staff.actor,
                   details={"collected_by": item.collected_by,
                            "collected_at": item.collected_at.isoformat()})
    _event(session, referral, "item_recorded", staff.actor, {"item": str(item.id), "sha256": digest})
    return item


def transfer_item(session: Session, item: CollectedItem, *, to: str, reason: str,
                  staff: StaffUser) -> ItemCustodyEvent:
    """The item changes hands (to a forensic lab, a prosecutor, an evidence store)."""
    receiver = _text(to, "to", _("Say who received the item."))
    return record_custody(session, item, action="transferred", actor=staff.actor,
                          details={"to": receiver, "reason": reason.strip()[:MAX_TEXT]})
