from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, StrEnumType, UTCDateTime, new_id
from tipline.messaging.enums import Author

if TYPE_CHECKING:
    from tipline.reports.models import Report


class ReportMessage(Base):
    """One message between the reporter and the people handling the report; sealed."""

    __tablename__ = "report_message"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report.id"), index=True)
    author: Mapped[Author] = mapped_column(StrEnumType(Author))
    # Shown to the reporter instead of a person's name, e.g. "Tipline team".
    author_label: Mapped[str] = mapped_column(String(120))
    body_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Never loaded (lazy="raise"): declared so that one flush inserts parents before children.
    report: Mapped[Report] = relationship(lazy="raise")
