"""The report lifecycle: every status, the allowed transitions, and what a reporter sees."""

from __future__ import annotations

from enum import StrEnum

from tipline.errors import Conflict


class ReportStatus(StrEnum):
    received = "received"
    in_review = "in_review"
    referred = "referred"
    investigating = "investigating"
    evidence_collected = "evidence_collected"
    prosecution = "prosecution"
    closed = "closed"
    not_actionable = "not_actionable"
    duplicate = "duplicate"
    retracted = "retracted"


S = ReportStatus
TRANSITIONS: dict[ReportStatus, frozenset[ReportStatus]] = {
    S.received: frozenset({S.in_review, S.duplicate, S.retracted}),
    S.in_review: frozenset({S.referred, S.not_actionable, S.duplicate, S.received}),
    S.referred: frozenset({S.investigating, S.in_review, S.closed}),
    S.investigating: frozenset({S.evidence_collected, S.prosecution, S.closed}),
    S.evidence_collected: frozenset({S.prosecution, S.closed}),
    S.prosecution: frozenset({S.closed}),
    S.closed: frozenset(),
    S.not_actionable: frozenset({S.in_review}),
    S.duplicate: frozenset(),
    S.retracted: frozenset(),
}


class CoarseStatus(StrEnum):
    """What the person who reported is told: enough to know it moves, nothing more."""

    received = "received"
    under_review = "under_review"
    referred = "referred"
    closed = "closed"


COARSE: dict[ReportStatus, CoarseStatus] = {
    S.received: CoarseStatus.received,
    S.in_review: CoarseStatus.under_review,
    S.referred: CoarseStatus.referred,
    S.investigating: CoarseStatus.referred,
    S.evidence_collected: CoarseStatus.referred,
    S.prosecution: CoarseStatus.referred,
    S.closed: CoarseStatus.closed,
    S.not_actionable: CoarseStatus.closed,
    S.duplicate: CoarseStatus.closed,
    S.retracted: CoarseStatus.closed,
}


def check_transition(current: ReportStatus, target: ReportStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise Conflict(f"a report cannot move from {current.value} to {target.value}")
