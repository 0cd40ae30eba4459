"""The analyst queue: what to look at next, and who is looking at it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, cast, func, or_, select
from sqlalchemy.orm import Session

from tipline import clock
from tipline.accounts.models import User
from tipline.audit import service as audit
from tipline.errors import Conflict, InvalidInput, NotFound
from tipline.i18n import _
from tipline.reports import service as reports
from tipline.reports.enums import IncidentType, Source
from tipline.reports.models import Report
from tipline.reports.states import ReportStatus
from tipline.triage import correlation, identifiers, priority
from tipline.triage.models import ReportIdentifier

OPEN_STATUSES = (ReportStatus.received, ReportStatus.in_review)
PAGE_SIZE = 50


def on_new_report(session: Session, report: Report, *, extra: dict[str, str] | None = None) -> None:
    """Everything triage does when a report arrives, whatever the channel."""
    on_new_reports(session, [(report, extra or {})])


def on_new_reports(session: Session, new: list[tuple[Report, dict[str, str]]]) -> None:
    """The same for reports filed together (a partner API batch): their identifiers, and a
    priority that counts the other reports, earlier or in this batch, about the same people.
    One query for the whole batch."""
    session.add_all(score_new_reports(session, new))


def score_new_reports(session: Session, new: list[tuple[Report, dict[str, str]]]) -> list[ReportIdentifier]:
    """`on_new_reports` without adding anything: the reports get their priority, and their
    identifier rows are returned for the caller to write (after the reports themselves)."""
    found = {report.id: identifiers.extract(report) for report, _extra in new}
    related = correlation.count_related_new(session, found)
    for report, extra in new:
        priority.apply(report, same_suspect_reports=related[report.id], extra=extra)
    return correlation.identifier_rows(found)


@dataclass(frozen=True)
class QueueFilter:
    status: str = "open"
    incident_type: str = ""
    country: str = ""
    source: str = ""
    assigned: str = ""  # "", "me", "nobody", or a user id
    page: int = 1


@dataclass
class QueuePage:
    rows: list[Report]
    total: int
    page: int
    pages: int
    now: datetime
    assignees: dict[uuid.UUID, str] = field(default_factory=dict)
    # How many reports are merged into each row (duplicates, bundled viral/meme reports).
    merged: dict[uuid.UUID, int] = field(default_factory=dict)


def _filtered(query: Select[Any], f: QueueFilter, me: uuid.UUID) -> Select[Any]:
    if f.status == "open" or not f.status:
        query = query.where(Report.status.in_(OPEN_STATUSES))
    elif f.status != "all":
        try:
            query = query.where(Report.status == ReportStatus(f.status))
        except ValueError as exc:
            raise InvalidInput(_("Unknown status."), field="status") from exc
    if f.incident_type:
        if f.incident_type not in {t.value for t in IncidentType}:
            raise InvalidInput(_("Unknown incident type."), field="incident_type")
        # JSON lists are stored as text on every backend we support.
        query = query.where(cast(Report.incident_types, Text).contains(f'"{f.incident_type}"'))
    if f.country:
        code = f.country.upper()
        query = query.where(or_(Report.child_country == code, Report.reporter_country == code))
    if f.source:
        try:
            query = query.where(Report.source == Source(f.source))
        except ValueError as exc:
            raise InvalidInput(_("Unknown source."), field="source") from exc
    if f.assigned == "me":
        query = query.where(Report.assigned_to_id == me)
    elif f.assigned == "nobody":
        query = query.where(Report.assigned_to_id.is_(None))
    elif f.assigned:
        try:
            query = query.where(Report.assigned_to_id == uuid.UUID(f.assigned))
        except ValueError as exc:
            raise InvalidInput(_("Unknown assignee."), field="assigned") from exc
    return query.where(Report.merged_into_id.is_(None))


def queue(session: Session, f: QueueFilter, *, me: uuid.UUID) -> QueuePage:
    base = _filtered(select(Report), f, me)
    total = int(session.execute(select(func.count()).select_from(base.subquery())).scalar_one())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, f.page), pages)
    # Page through ids only (an index walk), then load the fifty rows shown.
    page_ids = (base.with_only_columns(Report.id)
                .order_by(Report.priority_score.desc(), Report.created_at.asc())
                .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).scalar_subquery()
    rows = sorted(
        session.execute(select(Report).where(Report.id.in_(page_ids))).scalars(),
        key=lambda r: (-r.priority_score, r.created_at),
    )
    ids = {r.assigned_to_id for r in rows if r.assigned_to_id}
    names = {row[0]: row[1] for row in session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))} if ids else {}
    merged: dict[uuid.UUID, int] = {}
    if rows:
        for lead, count in session.execute(
                select(Report.merged_into_id, func.count()).where(Report.merged_into_id.in_([r.id for r in rows]))
                .group_by(Report.merged_into_id)):
            if lead is not None:
                merged[lead] = count
    return QueuePage(rows=rows, total=total, page=page, pages=pages, now=clock.now(), assignees=names,
                     merged=merged)


def get_report(session: Session, report_id: uuid.UUID) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound(_("No such report."))
    return report


def assign(session: Session, report: Report, user_id: uuid.UUID | None, *, actor: str,
           claim: bool = False) -> None:
    """Claim (take it yourself: refused if someone else has it) or assign to anyone."""
    if claim and report.assigned_to_id not in (None, user_id):
        raise Conflict(_("Someone else is already working on this report."))
    if user_id is not None and session.get(User, user_id) is None:
        raise InvalidInput(_("Unknown assignee."), field="assigned")
    report.assigned_to_id = user_id
    if report.status == ReportStatus.received and user_id is not None:
        reports.change_status(session, report, ReportStatus.in_review, actor=actor)
        report.triaged_at = report.triaged_at or clock.now()
    audit.record(session, actor=actor, action="report.assign", object_type="report",
                 object_id=str(report.id), details={"to": str(user_id) if user_id else None})


def confirm_types(session: Session, report: Report, types: list[str], *, actor: str) -> None:
    allowed = {t.value for t in IncidentType}
    chosen = [t for t in dict.fromkeys(types) if t]
    if not chosen or any(t not in allowed for t in chosen):
        raise InvalidInput(_("Choose at least one incident type from the list."), field="types")
    previous = report.confirmed_types
    report.confirmed_types = chosen
    report.triaged_at = report.triaged_at or clock.now()
    audit.record(session, actor=actor, action="report.classify", object_type="report",
                 object_id=str(report.id), details={"from": previous, "to": chosen,
                                                    "reported": report.incident_types})
