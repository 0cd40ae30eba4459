from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tipline.db import Base, StrEnumType, UTCDateTime, new_id
from tipline.reports.enums import (
    AgeBand,
    Certainty,
    Frequency,
    ReporterRole,
    Source,
    YesNoUnsure,
)
from tipline.reports.states import ReportStatus


class Report(Base):
    """One report, whatever channel it came through."""

    __tablename__ = "report"
    __table_args__ = (
        Index("ix_report_status_created", "status", "created_at"),
        # The queue's order (highest score first, then oldest), so pages are read, not sorted.
        Index("ix_report_queue", "status", text("priority_score DESC"), "created_at"),
        Index("ix_report_priority_order", text("priority_score DESC"), "created_at"),
        # Only merged reports have a value; indexing the NULLs misleads SQLite's planner.
        Index("ix_report_merged_into_id", "merged_into_id",
              sqlite_where=text("merged_into_id IS NOT NULL"),
              postgresql_where=text("merged_into_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    source: Mapped[Source] = mapped_column(StrEnumType(Source))
    status: Mapped[ReportStatus] = mapped_column(StrEnumType(ReportStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    reporter_role: Mapped[ReporterRole] = mapped_column(StrEnumType(ReporterRole))
    incident_types: Mapped[list[str]] = mapped_column(JSON)
    frequency: Mapped[Frequency] = mapped_column(StrEnumType(Frequency))
    certainty: Mapped[Certainty] = mapped_column(StrEnumType(Certainty))
    happened_on: Mapped[date | None] = mapped_column(Date)
    happened_period: Mapped[str] = mapped_column(String(200), default="")
    immediate_danger: Mapped[bool] = mapped_column(Boolean, default=False)

    platform: Mapped[str] = mapped_column(String(500), default="")
    urls: Mapped[list[str]] = mapped_column(JSON)
    # Everything known about who did it: usernames, profile links, e-mails, phones, notes.
    suspect: Mapped[dict[str, Any]] = mapped_column(JSON)

    child_age_band: Mapped[AgeBand] = mapped_column(StrEnumType(AgeBand))
    child_country: Mapped[str | None] = mapped_column(String(2))
    child_region: Mapped[str] = mapped_column(String(100), default="")
    reporter_country: Mapped[str | None] = mapped_column(String(2))

    description: Mapped[str] = mapped_column(Text)
    # Conditional answers (sextortion, meetings), kept together as given.
    sextortion: Mapped[dict[str, Any]] = mapped_column(JSON)
    meeting_planned: Mapped[YesNoUnsure] = mapped_column(StrEnumType(YesNoUnsure))
    meeting_details: Mapped[str] = mapped_column(Text, default="")

    # The reporter's identity is sealed; only roles that need it ever open it.
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    contact_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    language: Mapped[str] = mapped_column(String(16), default="en")

    codename_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    # Triage: a score kept up to date by triage.priority (sorted on, so stored), its reasons,
    # who works on it, and the times the statistics need.
    priority_score: Mapped[int] = mapped_column(Integer, default=0)
    priority_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assigned_to_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    confirmed_types: Mapped[list[str] | None] = mapped_column(JSON)
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    referred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("report.id"))
    # Partner reports flagged as viral or potential memes share a bundle: the first open one
    # is queued, the rest are merged into it (esp.service), so nobody triages copies one by one.
    bundle_key: Mapped[str | None] = mapped_column(String(80), index=True)


class FollowupSession(Base):
    """A reporter signed in with their codename. Only a digest of the token is kept."""

    __tablename__ = "followup_session"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
