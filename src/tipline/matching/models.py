"""Hash banks (named lists of known hashes), what Tipline's files and submitted hashes
matched in them, and the background jobs that hash and match."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, StrEnumType, UTCDateTime, new_id

# Bank entries are numbered, not UUIDs (an exception to the house rule): the in-memory PDQ
# index keeps one int64 per entry beside its hash, and 10M UUIDs would double its memory.
EntryId = BigInteger().with_variant(Integer, "sqlite")


class HashKind(StrEnum):
    md5 = "md5"
    sha1 = "sha1"
    sha256 = "sha256"
    pdq = "pdq"
    vpdq = "vpdq"


# Hex length of each kind's value (vPDQ entries are keyed by the SHA-256 of their frames).
HEX_LENGTH = {HashKind.md5: 32, HashKind.sha1: 40, HashKind.sha256: 64, HashKind.pdq: 64,
              HashKind.vpdq: 64}


class CategoryScheme(StrEnum):
    industry = "industry"    # A1 A2 B1 B2
    interpol = "interpol"    # baseline, national
    vics = "vics"            # Project VIC numbers, stored as their current (VICS 2.0) meaning
    iwf = "iwf"              # UK A B C
    custom = "custom"        # a hotline's own words


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class HashBank(Base):
    """A named list of known hashes from one source, matched while enabled."""

    __tablename__ = "hash_bank"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    source: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    category_scheme: Mapped[CategoryScheme] = mapped_column(StrEnumType(CategoryScheme))
    # Given to entries that arrive without a category of their own (may stay empty).
    default_category: Mapped[str | None] = mapped_column(String(40))
    # Largest PDQ (and vPDQ frame) Hamming distance that counts as a match in this bank.
    pdq_threshold: Mapped[int] = mapped_column(Integer, default=31)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BankEntry(Base):
    """One known hash. Importing the same hash twice into a bank keeps one entry."""

    __tablename__ = "hash_bank_entry"
    __table_args__ = (
        UniqueConstraint("bank_id", "kind", "value"),
        Index("ix_hash_bank_entry_kind_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(EntryId, primary_key=True, autoincrement=True)
    bank_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hash_bank.id"))
    kind: Mapped[HashKind] = mapped_column(StrEnumType(HashKind))
    # Lower-case hex. For vPDQ: the SHA-256 of the canonical frame list in `frames`.
    value: Mapped[str] = mapped_column(String(64))
    # vPDQ only: one line per frame, "frame_number,quality,pdq_hex".
    frames: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    import_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("hash_bank_import.id"), index=True)


class BankImport(Base):
    """One import of a file into a bank: its counts, its rejected lines, and the progress
    of re-matching stored evidence against what it added."""

    __tablename__ = "hash_bank_import"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    bank_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hash_bank.id"), index=True)
    filename: Mapped[str] = mapped_column(String(300), default="")
    format: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(120))
    state: Mapped[JobState] = mapped_column(StrEnumType(JobState))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lines: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    # The first rejected lines: [{"line": n, "error": "..."}].
    rejects: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    # Remarks for the operator (e.g. "PhotoDNA column ignored").
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Moved forward with every committed batch: the live progress any process can show, and
    # the sign that the importing process is still alive (a stale running import is swept).
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rematch_total: Mapped[int] = mapped_column(Integer, default=0)
    rematch_done: Mapped[int] = mapped_column(Integer, default=0)
    rematch_state: Mapped[JobState | None] = mapped_column(StrEnumType(JobState))


class SubmittedHash(Base):
    """A hash sent without its file (a partner's hash-only lead, a survivor's own hash).

    Sent through the partner API it belongs to the partner's open report first
    (esp_report_id) and to the Tipline report once that is filed (report_id). matched_at
    stays empty until the background worker has matched it (it is the worker's queue)."""

    __tablename__ = "submitted_hash"
    # The worker's queue: only the few rows not matched yet are in this index.
    __table_args__ = (Index("ix_submitted_hash_unmatched", "submitted_at",
                            postgresql_where=text("matched_at IS NULL"),
                            sqlite_where=text("matched_at IS NULL")),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("report.id"), index=True)
    esp_report_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("esp_report.id"), index=True)
    kind: Mapped[HashKind] = mapped_column(StrEnumType(HashKind))
    value: Mapped[str] = mapped_column(String(64))
    frames: Mapped[str | None] = mapped_column(Text)
    quality: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200), default="")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Never loaded (lazy="raise"): declared so that one flush inserts parents before children.
    report: Mapped[Base | None] = relationship("Report", lazy="raise")
    esp_report: Mapped[Base | None] = relationship("EspReport", lazy="raise")


class HashMatch(Base):
    """A file (or a submitted hash) found in a bank."""

    __tablename__ = "hash_match"
    __table_args__ = (
        UniqueConstraint("evidence_id", "entry_id"),
        UniqueConstraint("submitted_hash_id", "entry_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report.id"), index=True)
    evidence_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("evidence_file.id"), index=True)
    submitted_hash_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("submitted_hash.id"))
    bank_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hash_bank.id"), index=True)
    entry_id: Mapped[int] = mapped_column(EntryId, ForeignKey("hash_bank_entry.id"))
    kind: Mapped[HashKind] = mapped_column(StrEnumType(HashKind))
    distance: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str | None] = mapped_column(String(40))
    matched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Never loaded (lazy="raise"): declared so that one flush inserts parents before children.
    evidence: Mapped[Base | None] = relationship("EvidenceFile", lazy="raise")
    submitted_hash: Mapped[SubmittedHash | None] = relationship(lazy="raise")


class HashJob(Base):
    """Work done off the request path: hash and match one stored file ("file"), or match
    a bank import's new entries against stored hashes ("rematch")."""

    __tablename__ = "hash_job"
    __table_args__ = (Index("ix_hash_job_state_created", "state", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    evidence_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("evidence_file.id"), index=True)
    import_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("hash_bank_import.id"))
    state: Mapped[JobState] = mapped_column(StrEnumType(JobState))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str] = mapped_column(Text, default="")
