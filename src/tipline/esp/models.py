"""Partner accounts and the reports they are still assembling through the ESP API."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, StrEnumType, UTCDateTime, new_id

if TYPE_CHECKING:
    from tipline.evidence.models import EvidenceFile
    from tipline.reports.models import Report


class EspReportState(StrEnum):
    open = "open"
    finished = "finished"
    retracted = "retracted"


class Partner(Base):
    """A tech company that files reports through the partner API (HTTP Basic)."""

    __tablename__ = "esp_partner"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # Argon2id; the password itself is shown once, when the account is created.
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EspReport(Base):
    """A report opened with /submit. It becomes a Tipline report at /finish."""

    __tablename__ = "esp_report"
    __table_args__ = (Index("ix_esp_report_state_last_change", "state", "last_change_at"),
                      Index("ix_esp_report_partner_reference", "partner_id", "partner_reference"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The number partners see (`reportId`); numeric because clients parse it as a long.
    report_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("esp_partner.id"), index=True)
    state: Mapped[EspReportState] = mapped_column(StrEnumType(EspReportState))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_change_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The validated `report` document as JSON (see esp.xml); mapped to a report at finish.
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    tipline_report_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("report.id"), index=True)
    # The JSON API's idempotency key (Idempotency-Key or partnerReference), and a digest of
    # the document first sent with it: the same key with another document is refused.
    partner_reference: Mapped[str | None] = mapped_column(String(200))
    reference_digest: Mapped[str | None] = mapped_column(String(64))
    # Never loaded (lazy="raise"): declared so that one flush inserts parents before children.
    tipline_report: Mapped[Report | None] = relationship(lazy="raise")


class EspFile(Base):
    """One uploaded file. Until finish it is a staged blob in the vault (encrypted, hashed);
    at finish it becomes an evidence file of the Tipline report, with its custody events."""

    __tablename__ = "esp_file"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    file_id: Mapped[str] = mapped_column(String(32), unique=True)
    esp_report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("esp_report.id"), index=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blob_name: Mapped[str] = mapped_column(String(64), unique=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str] = mapped_column(String(32))
    # File names can identify people: sealed, like evidence names.
    name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The validated `fileDetails` document as JSON, when the partner sent one.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # None until fileDetails say so. A file the ESP did not view needs a recorded legal
    # basis (a warrant reference) before staff may reveal it.
    viewed_by_esp: Mapped[bool | None] = mapped_column(Boolean)
    exif_viewed_by_esp: Mapped[bool | None] = mapped_column(Boolean)
    publicly_available: Mapped[bool | None] = mapped_column(Boolean)
    needs_legal_basis: Mapped[bool] = mapped_column(Boolean, default=True)
    evidence_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("evidence_file.id"), index=True)
    # Never loaded (lazy="raise"): declared so that one flush inserts parents before children.
    esp_report: Mapped[EspReport] = relationship(lazy="raise")
    evidence: Mapped[EvidenceFile | None] = relationship(lazy="raise")
