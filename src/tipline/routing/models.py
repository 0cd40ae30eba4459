from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tipline.db import Base, UTCDateTime


class DirectoryOrganisation(Base):
    """One place that takes reports or helps, as listed in the bundled directory file.

    The id comes from the file, so re-importing the same file updates rows in place."""

    __tablename__ = "directory_organisation"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    # Null only for bodies whose scope is wider than one country.
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    scope: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    handles: Mapped[list[str]] = mapped_column(JSON)
    url: Mapped[str | None] = mapped_column(String(500))
    report_url: Mapped[str | None] = mapped_column(String(500))
    phone: Mapped[str | None] = mapped_column(String(200))
    # None means nobody has checked; it must not be shown as "no".
    anonymous_reports: Mapped[bool | None] = mapped_column(Boolean)
    notes: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[str] = mapped_column(String(10))
    subdivisions: Mapped[list[str]] = mapped_column(JSON)
    coverage: Mapped[str | None] = mapped_column(Text)
    # True until someone has confirmed the entry against the organisation's own page.
    verify: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EmergencyNumbers(Base):
    """The numbers that reach emergency services from a country, and the one to show first."""

    __tablename__ = "emergency_numbers"

    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    numbers: Mapped[list[str]] = mapped_column(JSON)
    primary: Mapped[str] = mapped_column(String(10))
    # False when the importer chose the primary number by rule rather than a person by hand.
    labelled: Mapped[bool] = mapped_column(Boolean, default=False)
