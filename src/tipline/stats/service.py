"""Statistics for supervisors, aggregated in SQL: reports per day by type and by source,
median times to triage and to referral, and where the reports are now.

Everything here reads; nothing writes. Every figure is about the reports *received* in the
period (the last `days` days, today included, in UTC), so the numbers on one page describe
one set of reports. Queries group in the database, so the cost does not grow with the
rows a page shows, and stay portable: SQLite and PostgreSQL differ in how a timestamp
becomes a day and in how a median is taken, and each gets its own expression.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Text,
    case,
    cast,
    extract,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from tipline import clock
from tipline.reports.enums import IncidentType, Source
from tipline.reports.models import Report
from tipline.reports.states import ReportStatus

DEFAULT_DAYS = 30
MIN_DAYS = 7
MAX_DAYS = 365


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive: today

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=UTC)


def period(days: int, *, today: date | None = None) -> Period:
    end = today or clock.now().date()
    return Period(start=end - timedelta(days=days - 1), end=end)


@dataclass(frozen=True)
class DailyCounts:
    """Counts per day for each category, aligned with `days` (zeros filled in)."""

    days: list[date]
    categories: list[str]
    counts: dict[str, list[int]]

    def total(self, category: str) -> int:
        return sum(self.counts[category])

    def per_day(self) -> list[int]:
        return [sum(self.counts[c][i] for c in self.categories) for i in range(len(self.days))]


@dataclass(frozen=True)
class Median:
    """The median duration in seconds over `count` reports (None when there are none)."""

    seconds: float | None
    count: int


@dataclass(frozen=True)
class Stats:
    period: Period
    received: int
    by_type: DailyCounts
    by_source: DailyCounts
    to_triage: Median
    to_referral: Median
    by_status: list[tuple[str, int]]
    case_outcomes: list[tuple[str, int]] = field(default_factory=list)


# --- dialect-specific expressions -----------------------------------------------------------

def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _day(session: Session, column: InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column."""
    if _dialect(session) == "postgresql":
        # A cast of timestamptz to date follows the session's time zone; pin it to UTC.
        # A literal, not a parameter: PostgreSQL must see the same expression in GROUP BY.
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    # SQLite keeps UTC text ("2024-05-01 13:45:00.000000"); its first ten characters are
    # the day, which is cheaper to take than to parse with date().
    return func.substr(column, 1, 10)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _seconds_between(session: Session, start: InstrumentedAttribute[Any],
                     end: InstrumentedAttribute[Any]) -> ColumnElement[float]:
    if _dialect(session) == "postgresql":
        return cast(extract("epoch", end - start), Float)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


# --- the figures ----------------------------------------------------------------------------

def _effective_types() -> ColumnElement[str]:
    """The types an analyst confirmed, else those reported, as JSON text."""
    confirmed = cast(Report.confirmed_types, Text)
    return case((or_(confirmed.is_(None), confirmed == "null"), cast(Report.incident_types, Text)),
                else_=confirmed)


def _in_period(when: Period) -> tuple[ColumnElement[bool], ...]:
    """Reports received in the period. The only index on `created_at` leads with `status`;
    naming every status lets SQLite and PostgreSQL search it by range instead of reading
    the whole table (a status match on every report, so nothing is left out)."""
    return (Report.status.in_(list(ReportStatus)), Report.created_at >= when.since)


def reports_per_day(session: Session, when: Period) -> tuple[DailyCounts, DailyCounts]:
    """Reports per day by incident type and by source, in one pass over the period's rows
    (a conditional sum per category). A report of two types counts for each."""
    day = _day(session, Report.created_at)
    types = [t.value for t in IncidentType]
    sources = [s.value for s in Source]
    text = _effective_types()
    sums = [func.sum(case((text.contains(f'"{t}"', autoescape=True), 1), else_=0)) for t in types]
    sums += [func.sum(case((Report.source == Source(s), 1), else_=0)) for s in sources]
    rows = session.execute(select(day, *sums).where(*_in_period(when)).group_by(day)).all()
    by_type = _fill(when, types, ((row[0], t, row[1 + i] or 0) for row in rows for i, t in enumerate(types)))
    by_source = _fill(when, sources, ((row[0], c, row[1 + len(types) + i] or 0)
                                      for row in rows for i, c in enumerate(sources)))
    return by_type, by_source


def _fill(when: Period, categories: list[str], found: Any) -> DailyCounts:
    days = when.days
    index = {d: i for i, d in enumerate(days)}
    counts = {c: [0] * len(days) for c in categories}
    for day, category, count in found:
        position = index.get(_as_date(day))
        if position is not None and category in counts:
            counts[category][position] += int(count)
    return DailyCounts(days, categories, counts)


def median_duration(session: Session, when: Period, end: InstrumentedAttribute[Any]) -> Median:
    """Median of `end - created_at` over the period's reports that have `end`."""
    seconds = _seconds_between(session, Report.created_at, end)
    where = (*_in_period(when), end.is_not(None))
    if _dialect(session) == "postgresql":
        value, count = session.execute(
            select(func.percentile_cont(0.5).within_group(seconds), func.count()).where(*where)
        ).one()
        return Median(float(value) if value is not None else None, int(count))
    # SQLite has no percentile function: count, then read the middle one or two in order.
    count = int(session.execute(select(func.count()).select_from(Report).where(*where)).scalar_one())
    if count == 0:
        return Median(None, 0)
    middle = session.execute(
        select(seconds).where(*where).order_by(seconds).limit(2 - count % 2).offset((count - 1) // 2)
    ).scalars().all()
    return Median(sum(float(v) for v in middle) / len(middle), count)


def reports_by_status(session: Session, when: Period) -> list[tuple[str, int]]:
    """Where the period's reports are now, every status in lifecycle order."""
    rows = session.execute(
        select(Report.status, func.count()).where(*_in_period(when)).group_by(Report.status)
    ).all()
    found = {ReportStatus(status).value: int(count) for status, count in rows}
    return [(s.value, found.get(s.value, 0)) for s in ReportStatus]


def case_outcomes(session: Session, when: Period) -> list[tuple[str, int]]:
    """Outcomes recorded on referrals (arrest, charged, ...), when the cases domain keeps
    them: any mapped class of `tipline.cases.models` with `outcome` and `report_id`.
    Without one, there is nothing to count and the page shows the statuses alone."""
    try:
        models = importlib.import_module("tipline.cases.models")
    except ModuleNotFoundError:
        return []
    for candidate in vars(models).values():
        outcome = getattr(candidate, "outcome", None)
        report_id = getattr(candidate, "report_id", None)
        if isinstance(candidate, type) and hasattr(candidate, "__table__") \
                and isinstance(outcome, InstrumentedAttribute) and isinstance(report_id, InstrumentedAttribute):
            rows = session.execute(
                select(outcome, func.count()).join(Report, Report.id == report_id)
                .where(*_in_period(when), outcome.is_not(None)).group_by(outcome)
            ).all()
            counted = [(_text(value), int(count)) for value, count in rows]
            return sorted(counted, key=lambda item: (-item[1], item[0]))
    return []


def _text(value: Any) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def collect(session: Session, *, days: int = DEFAULT_DAYS, today: date | None = None) -> Stats:
    when = period(days, today=today)
    by_type, by_source = reports_per_day(session, when)
    return Stats(
        period=when,
        # Every report has exactly one source, so the sources add up to the reports.
        received=sum(by_source.total(s) for s in by_source.categories),
        by_type=by_type,
        by_source=by_source,
        to_triage=median_duration(session, when, Report.triaged_at),
        to_referral=median_duration(session, when, Report.referred_at),
        by_status=reports_by_status(session, when),
        case_outcomes=case_outcomes(session, when),
    )


def csv_rows(stats: Stats) -> list[list[str]]:
    """The same numbers as the page, one figure per row: metric, day, category, value."""
    rows: list[list[str]] = [["metric", "day", "category", "value"],
                             ["period_start", stats.period.start.isoformat(), "", ""],
                             ["period_end", stats.period.end.isoformat(), "", ""],
                             ["reports_received", "", "", str(stats.received)]]
    for metric, daily in (("reports_by_type", stats.by_type), ("reports_by_source", stats.by_source)):
        for i, day in enumerate(daily.days):
            rows.extend([metric, day.isoformat(), c, str(daily.counts[c][i])] for c in daily.categories)
    for metric, median in (("to_triage", stats.to_triage), ("to_referral", stats.to_referral)):
        hours = "" if median.seconds is None else f"{median.seconds / 3600:.2f}"
        rows.append([f"median_hours_{metric}", "", "", hours])
        rows.append([f"reports_counted_{metric}", "", "", str(median.count)])
    rows.extend(["reports_by_status", "", status, str(n)] for status, n in stats.by_status)
    rows.extend(["case_outcomes", "", outcome, str(n)] for outcome, n in stats.case_outcomes)
    return rows
