"""Creating reports and the reporter's way back in (codename sign-in, follow-up sessions)."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tipline import clock, crypto
from tipline.audit import service as audit
from tipline.db import new_id
from tipline.errors import NotFound
from tipline.reports import codenames
from tipline.reports.enums import Source
from tipline.reports.models import FollowupSession, Report
from tipline.reports.schemas import ReportCreate
from tipline.reports.states import COARSE, CoarseStatus, ReportStatus, check_transition

_REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CONTACT_CONTEXT = b"tipline:contact"


def new_reference() -> str:
    chars = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
    return f"TL-{chars[:4]}-{chars[4:]}"


@dataclass(frozen=True)
class NewCodename:
    """A codename and its lookup hash; hash it outside the transaction (it is slow)."""

    codename: str
    lookup: str


def make_codename(keys: crypto.Keys, cost: crypto.Argon2Cost, words: int) -> NewCodename:
    codename = codenames.new_codename(words)
    return NewCodename(codename, crypto.lookup_hash(keys, codename, cost))


def create_report(
    session: Session,
    keys: crypto.Keys,
    data: ReportCreate,
    *,
    source: Source,
    codename_lookup: str | None,
    actor: str,
    add: bool = True,
) -> Report:
    """The report and its audit entry. With add=False the object is not added to the
    session: a partner batch writes many at once (`db.insert_new`)."""
    now = clock.now()
    contact = data.contact if data.contact and not data.contact.is_empty() else None
    report = Report(
        id=new_id(), reference=new_reference(), source=source, status=ReportStatus.received,
        created_at=now, updated_at=now,
        reporter_role=data.reporter_role, incident_types=[t.value for t in data.incident_types],
        frequency=data.frequency, certainty=data.certainty, happened_on=data.happened_on,
        happened_period=data.happened_period, immediate_danger=data.immediate_danger,
        platform=data.platform, urls=list(data.urls), suspect=data.suspect.model_dump(),
        child_age_band=data.child_age_band, child_country=data.child_country,
        child_region=data.child_region, reporter_country=data.reporter_country,
        description=data.description, sextortion=data.sextortion.model_dump(mode="json"),
        meeting_planned=data.meeting_planned, meeting_details=data.meeting_details,
        anonymous=contact is None,
        contact_sealed=crypto.seal(
            keys.derive("contact"), contact.model_dump_json().encode(), CONTACT_CONTEXT
        ) if contact else None,
        language=data.language, codename_hash=codename_lookup,
    )
    if add:
        # No flush: the row is written with the rest of the transaction (ids are made here).
        session.add(report)
    audit.record(
        session, actor=actor, action="report.create", object_type="report",
        object_id=str(report.id),
        details={"reference": report.reference, "source": source.value,
                 "incident_types": report.incident_types},
    )
    return report


def contact_details(keys: crypto.Keys, report: Report) -> dict[str, str] | None:
    if report.contact_sealed is None:
        return None
    raw = crypto.unseal(keys.derive("contact"), report.contact_sealed, CONTACT_CONTEXT)
    value: dict[str, str] = json.loads(raw)
    return value


def get_by_reference(session: Session, reference: str) -> Report:
    report = session.execute(
        select(Report).where(Report.reference == reference.strip().upper())
    ).scalar_one_or_none()
    if report is None:
        raise NotFound("no report with that reference")
    return report


def change_status(session: Session, report: Report, target: ReportStatus, *, actor: str,
                  reason: str = "") -> None:
    check_transition(report.status, target)
    previous = report.status
    report.status = target
    report.updated_at = clock.now()
    audit.record(session, actor=actor, action="report.status", object_type="report",
                 object_id=str(report.id),
                 details={"from": previous.value, "to": target.value, "reason": reason})


def coarse_status(report: Report) -> CoarseStatus:
    return COARSE[report.status]


# --- follow-up sign-in -------------------------------------------------------------------

def find_by_codename(session: Session, lookup: str) -> Report | None:
    return session.execute(select(Report).where(Report.codename_hash == lookup)).scalar_one_or_none()


def open_followup_session(session: Session, report: Report, minutes: int) -> str:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.execute(delete(FollowupSession).where(FollowupSession.expires_at < now))
    session.add(FollowupSession(
        token_digest=crypto.token_digest(token), report_id=report.id,
        expires_at=now + timedelta(minutes=minutes),
    ))
    audit.record(session, actor="reporter", action="followup.signin", object_type="report",
                 object_id=str(report.id))
    return token


def report_for_token(session: Session, token: str | None) -> Report | None:
    if not token:
        return None
    row = session.get(FollowupSession, crypto.token_digest(token))
    if row is None or row.expires_at < clock.now():
        return None
    return session.get(Report, row.report_id)


def close_followup_session(session: Session, token: str) -> None:
    session.execute(delete(FollowupSession).where(FollowupSession.token_digest == crypto.token_digest(token)))


def report_id_of(report: Report) -> uuid.UUID:
    return report.id
