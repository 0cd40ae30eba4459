from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tipline.db import Base, StrEnumType, UTCDateTime, new_id


class ReferralStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"


# A referral that still binds its agency to the report.
LIVE_STATUSES = (ReferralStatus.pending, ReferralStatus.accepted)


class CaseOutcome(StrEnum):
    arrest = "arrest"
    charged = "charged"
    convicted = "convicted"
    no_further_action = "no_further_action"
    unfounded = "unfounded"


class Referral(Base):
    """One report handed to one agency, and what the agency did with it."""

    __tablename__ = "referral"
    __table_args__ = (Index("ix_referral_agency_status", "agency_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report.id"), index=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agency.id"))
    status: Mapped[ReferralStatus] = mapped_column(StrEnumType(ReferralStatus))
    # Why this agency: the routing suggestion's reason, or the analyst's own words.
    reason: Mapped[str] = mapped_column(Text)
    suggested: Mapped[bool] = mapped_column(Boolean, default=False)
    referred_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    referred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[CaseOutcome | None] = mapped_column(StrEnumType(CaseOutcome))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CaseEvent(Base):
    """One step of a referral's life (referred, accepted, status changes, notices sent or
    failed, items recorded, packages exported): the timeline on the case page."""

    __tablename__ = "case_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CollectedItem(Base):
    """Evidence the agency collected itself (a seized phone, an account export): what it is,
    where and how it was acquired, its SHA-256, who collected it and when."""

    __tablename__ = "collected_item"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral.id"), index=True)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    acquired_where: Mapped[str] = mapped_column(Text)
    acquired_how: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    collected_by: Mapped[str] = mapped_column(String(200))
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ItemCustodyEvent(Base):
    """One touch of one collected item (collected, transferred, exported), like the vault's
    custody_event for files the reporter sent."""

    __tablename__ = "collected_item_custody"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("collected_item.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120))
    sha256: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text, default="")
