from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, StrEnumType, UTCDateTime, new_id
from tipline.triage.identifiers import IdentifierKind

if TYPE_CHECKING:
    from tipline.reports.models import Report


class ReportIdentifier(Base):
    """One normalised identifier found in a report; reports sharing a (kind, value) are
    related. Derived from the report, so rebuilt whenever the report is indexed."""

    __tablename__ = "report_identifier"
    __table_args__ = (
        Index("ix_report_identifier_kind_value", "kind", "value"),
        UniqueConstraint("report_id", "kind", "value"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), index=True)
    kind: Mapped[IdentifierKind] = mapped_column(StrEnumType(IdentifierKind, length=16))
    value: Mapped[str] = mapped_column(String(512))
    raw: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Never loaded (lazy="raise"): declared so that one flush inserts parents before children.
    report: Mapped[Report] = relationship(lazy="raise")
