"""Correlation: reports that share an identifier (e-mail, phone, URL, username, IP) are
related; related reports can be merged into one case or marked duplicate.

The identifiers are derived data (see identifiers.py), indexed in `report_identifier` by
(kind, value), so finding related reports is one join on that index whatever the table's size.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, and_, bindparam, delete, distinct, func, select, union_all
from sqlalchemy.orm import Session, aliased

from tipline import clock
from tipline.audit import service as audit
from tipline.db import new_id
from tipline.errors import Conflict, InvalidInput
from tipline.i18n import _
from tipline.reports import service as reports
from tipline.reports.models import Report
from tipline.reports.states import TRANSITIONS, ReportStatus
from tipline.triage import identifiers
from tipline.triage.identifiers import IdentifierKind
from tipline.triage.models import ReportIdentifier


@dataclass
class Related:
    report_id: uuid.UUID
    reference: str
    created_at: datetime
    shared: list[str] = field(default_factory=list)


# --- indexing -------------------------------------------------------------------------------

def index_report(session: Session, report: Report) -> int:
    """Replace the report's identifiers with those it contains now; returns how many."""
    if report.id is None:
        session.flush()
    session.execute(delete(ReportIdentifier).where(ReportIdentifier.report_id == report.id))
    found = identifiers.extract(report)
    now = clock.now()
    session.add_all(
        ReportIdentifier(report_id=report.id, kind=item.kind, value=item.value, raw=item.raw,
                         created_at=now)
        for item in found
    )
    session.flush()
    return len(found)


def add_identifiers(session: Session, found: dict[uuid.UUID, list[identifiers.Identifier]]) -> None:
    """Index new reports (nothing to replace yet), without a flush of its own."""
    session.add_all(identifier_rows(found))


def identifier_rows(found: dict[uuid.UUID, list[identifiers.Identifier]]) -> list[ReportIdentifier]:
    """The index rows of new reports, not added to any session."""
    now = clock.now()
    return [ReportIdentifier(id=new_id(), report_id=report_id, kind=item.kind, value=item.value,
                             raw=item.raw, created_at=now)
            for report_id, items in found.items() for item in items]


def _holders_of(kind: IdentifierKind) -> Select[uuid.UUID, IdentifierKind, str]:
    return (select(ReportIdentifier.report_id, ReportIdentifier.kind, ReportIdentifier.value)
            .where(ReportIdentifier.kind == kind,
                   ReportIdentifier.value.in_(bindparam(f"values_{kind.value}", expanding=True))))


# Built once: one branch per kind, "kind = ? AND value IN (…)", which both SQLite and
# PostgreSQL look up per value in the (kind, value) index (a (kind, value) IN (…) of pairs
# made SQLite scan the table, and IN lists for both columns made PostgreSQL scan a whole
# kind). One statement for every kind: one round trip per batch, not one per kind. An empty
# list matches nothing.
_HOLDERS = union_all(*(_holders_of(kind) for kind in IdentifierKind))


def count_related_new(session: Session, found: dict[uuid.UUID, list[identifiers.Identifier]]) -> dict[uuid.UUID, int]:
    """For reports not indexed yet: how many other reports (already indexed, or among these)
    share an identifier with each. One query, through the (kind, value) index."""
    holders: dict[tuple[str, str], set[uuid.UUID]] = {}
    wanted = {(str(item.kind), item.value) for items in found.values() for item in items}
    if wanted:
        values: dict[str, list[str]] = {f"values_{kind.value}": [] for kind in IdentifierKind}
        for kind, value in sorted(wanted):
            values[f"values_{kind}"].append(value)
        for report_id, kind, value in session.connection().execute(_HOLDERS, values):
            holders.setdefault((str(kind), value), set()).add(report_id)
    for report_id, items in found.items():
        for item in items:
            holders.setdefault((str(item.kind), item.value), set()).add(report_id)
    counts: dict[uuid.UUID, int] = {}
    for report_id, items in found.items():
        others: set[uuid.UUID] = set()
        for item in items:
            others |= holders[(str(item.kind), item.value)]
        others.discard(report_id)
        counts[report_id] = len(others)
    return counts


# --- finding related reports ----------------------------------------------------------------

def _group(session: Session, report_id: uuid.UUID) -> list[uuid.UUID]:
    """The report and the reports merged into it: one case, one set of identifiers."""
    merged = session.execute(select(Report.id).where(Report.merged_into_id == report_id)).scalars()
    return [report_id, *merged]


def _shared_rows(group: list[uuid.UUID]) -> Select[uuid.UUID, IdentifierKind, str]:
    """(other report, kind, value) for each identifier of another report that equals one of
    the group's: found through the (kind, value) index."""
    mine = aliased(ReportIdentifier)
    theirs = aliased(ReportIdentifier)
    return (
        select(theirs.report_id, theirs.kind, theirs.value)
        .join(mine, and_(mine.kind == theirs.kind, mine.value == theirs.value))
        .where(mine.report_id.in_(group), theirs.report_id.not_in(group))
        .distinct()
    )


def related_reports(session: Session, report_id: uuid.UUID) -> list[Related]:
    """Every other report sharing an identifier with this one (or with a report merged into
    it), most shared identifiers first, then newest first."""
    shared = _shared_rows(_group(session, report_id)).subquery()
    rows = session.execute(
        select(shared.c.report_id, shared.c.kind, shared.c.value, Report.reference, Report.created_at)
        .join(Report, Report.id == shared.c.report_id)
    ).all()
    found: dict[uuid.UUID, Related] = {}
    for other_id, kind, value, reference, created_at in rows:
        item = found.setdefault(other_id, Related(other_id, reference, created_at))
        item.shared.append(identifiers.describe(kind, value))
    for item in found.values():
        item.shared.sort()
    return sorted(found.values(), key=lambda r: (-len(r.shared), -r.created_at.timestamp(), r.reference))


def count_related(session: Session, report_id: uuid.UUID) -> int:
    """How many other reports share an identifier with this one (for the priority score)."""
    shared = _shared_rows(_group(session, report_id)).subquery()
    query = select(func.count(distinct(shared.c.report_id)))
    return int(session.execute(query).scalar_one())


# --- merging --------------------------------------------------------------------------------

def _statuses_that_may_become_duplicate() -> list[str]:
    return [s.value for s, targets in TRANSITIONS.items() if ReportStatus.duplicate in targets]


def _check_merge(target: Report, sources: Sequence[Report]) -> None:
    """Everything is checked before anything changes, so a refusal leaves no half-merge."""
    if not sources:
        raise InvalidInput(_("Choose at least one report to merge."), field="sources")
    if target.merged_into_id is not None or target.status == ReportStatus.duplicate:
        raise Conflict(_("%(ref)s is itself a duplicate; merge into the report it belongs to.")
                       % {"ref": target.reference})
    for source in sources:
        if source.id == target.id:
            raise Conflict(_("A report cannot be merged into itself."))
        if source.merged_into_id is not None:
            raise Conflict(_("%(ref)s is already merged into another report.") % {"ref": source.reference})
        if ReportStatus.duplicate not in TRANSITIONS[source.status]:
            raise Conflict(
                _("%(ref)s is %(status)s and cannot become a duplicate; only reports that are %(allowed)s can.")
                % {"ref": source.reference, "status": source.status.value,
                   "allowed": " or ".join(_statuses_that_may_become_duplicate())})


def _merge_one(session: Session, target: Report, source: Report, *, actor: str, action: str) -> None:
    reports.change_status(session, source, ReportStatus.duplicate, actor=actor,
                          reason=f"duplicate of {target.reference}")
    source.merged_into_id = target.id
    # Reports merged into the source follow it, so a case is never a chain.
    children = list(session.execute(select(Report).where(Report.merged_into_id == source.id)).scalars())
    for child in children:
        child.merged_into_id = target.id
    audit.record(session, actor=actor, action=action, object_type="report", object_id=str(source.id),
                 details={"reference": source.reference, "into": str(target.id),
                          "into_reference": target.reference,
                          "also_moved": [str(c.id) for c in children]})


def merge_reports(session: Session, *, target: Report, sources: Sequence[Report], actor: str) -> None:
    """Merge `sources` into `target`: each becomes a duplicate of it. Their identifiers and
    evidence stay on their own rows; the target's related reports include theirs."""
    unique = list({s.id: s for s in sources}.values())
    _check_merge(target, unique)
    for source in unique:
        _merge_one(session, target, source, actor=actor, action="report.merge")
    session.flush()


def mark_duplicate(session: Session, report: Report, of: Report, actor: str) -> None:
    """`report` says nothing new: it becomes a duplicate of `of`."""
    _check_merge(of, [report])
    _merge_one(session, of, report, actor=actor, action="report.duplicate")
    session.flush()
