from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, UTCDateTime, new_id


class EvidenceFile(Base):
    """A file in the vault. The blob is ciphertext; these columns are what we know of it."""

    __tablename__ = "evidence_file"
    # The hashing worker's queue: only files waiting for (or in) hashing are in this index.
    __table_args__ = (Index("ix_evidence_file_hash_waiting", "hash_state", "received_at",
                            postgresql_where=text("hash_state IN ('pending', 'hashing')"),
                            sqlite_where=text("hash_state IN ('pending', 'hashing')")),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report.id"), index=True)
    message_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("report_message.id"))
    blob_name: Mapped[str] = mapped_column(String(64), unique=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    md5: Mapped[str] = mapped_column(String(32), index=True)
    # File names can identify people, so the name is sealed like a message.
    name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Known-content hashes, filled in off the request path by the hashing job (matching):
    # SHA-1 for hash lists keyed on it, PDQ (hex) with its quality for images, vPDQ frames
    # ("frame_number,quality,pdq_hex" lines) for videos. hash_state: pending, done, failed,
    # or none (nothing perceptual to compute: not an image or video).
    sha1: Mapped[str | None] = mapped_column(String(40), index=True)
    pdq: Mapped[str | None] = mapped_column(String(64))
    pdq_quality: Mapped[int | None] = mapped_column(Integer)
    vpdq_frames: Mapped[str | None] = mapped_column(Text)
    hash_state: Mapped[str] = mapped_column(String(12), default="pending")
    hashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Never loaded (lazy="raise"): declared so that one flush inserts parents before children.
    # Named by string like the foreign keys: the evidence layer does not import upper domains.
    report: Mapped[Base] = relationship("Report", lazy="raise")
    message: Mapped[Base | None] = relationship("ReportMessage", lazy="raise")


class CustodyEvent(Base):
    """One touch of one evidence file: who, when, what, and why."""

    __tablename__ = "custody_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    evidence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evidence_file.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120))
    sha256: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text, default="")
    # Never loaded (lazy="raise"): declared so that one flush inserts parents before children.
    evidence: Mapped[EvidenceFile] = relationship(lazy="raise")
