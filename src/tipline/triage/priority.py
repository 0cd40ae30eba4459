"""The triage priority score: points for what makes a report urgent, each with its reason.

The score is stored on the report (the queue sorts on it with an index) and recomputed
whenever something it depends on changes. Ties go to the oldest report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tipline.reports.enums import AgeBand, YesNoUnsure
from tipline.reports.models import Report

# Points, and the time within which a report with that many points should be triaged.
POINTS = {
    "immediate_danger": 100,
    "sextortion_deadline": 40,
    "sextortion_demand": 25,
    "under_13": 30,
    "meeting_planned": 35,
    "ongoing": 10,
    "same_suspect": 20,
    "known_material": 45,
    "partner_escalation": 40,
}
SLA = ((100, timedelta(hours=1)), (40, timedelta(hours=4)), (20, timedelta(hours=24)))
DEFAULT_SLA = timedelta(hours=72)


@dataclass(frozen=True)
class Priority:
    score: int
    reasons: list[str]


def compute(report: Report, *, same_suspect_reports: int = 0, extra: dict[str, str] | None = None) -> Priority:
    """`extra` lets other channels add a reason (e.g. a partner's escalation) by key."""
    found: list[tuple[int, str]] = []
    if report.immediate_danger:
        found.append((POINTS["immediate_danger"], "child in immediate danger"))
    sextortion = report.sextortion or {}
    if "sextortion" in report.incident_types or sextortion.get("demands"):
        if sextortion.get("deadline"):
            found.append((POINTS["sextortion_deadline"], f"sextortion with a deadline ({sextortion['deadline']})"))
        elif sextortion.get("demands"):
            found.append((POINTS["sextortion_demand"], "sextortion: " + ", ".join(sextortion["demands"]) + " demanded"))
    if report.child_age_band in (AgeBand.under_9, AgeBand.age_9_12):
        found.append((POINTS["under_13"], "child under 13"))
    if report.meeting_planned == YesNoUnsure.yes:
        found.append((POINTS["meeting_planned"], "a meeting is planned"))
    elif report.frequency.value == "repeated":
        found.append((POINTS["ongoing"], "ongoing contact"))
    if same_suspect_reports:
        found.append((POINTS["same_suspect"] + 5 * min(same_suspect_reports - 1, 4),
                      f"{same_suspect_reports} other report(s) about the same suspect"))
    for key, reason in (extra or {}).items():
        found.append((POINTS.get(key, 10), reason))
    found.sort(key=lambda item: -item[0])
    return Priority(sum(points for points, _ in found), [reason for _, reason in found])


def due(created_at: datetime, score: int) -> datetime:
    for threshold, window in SLA:
        if score >= threshold:
            return created_at + window
    return created_at + DEFAULT_SLA


def apply(report: Report, *, same_suspect_reports: int = 0, extra: dict[str, str] | None = None) -> None:
    result = compute(report, same_suspect_reports=same_suspect_reports, extra=extra)
    report.priority_score = result.score
    report.priority_reasons = result.reasons
    report.due_at = due(report.created_at, result.score)
