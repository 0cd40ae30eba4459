"""Shared by the hashing-worker, matcher and rematch tests: files stored through the real
intake path (vault, database), banks and entries inserted with plain SQLAlchemy, and a
worker over the test's app context. Synthetic data only: generated pictures and videos,
random hashes, invented names."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import insert, select

from tests.helpers import report_json
from tipline import clock
from tipline.context import AppContext
from tipline.db import transaction
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.intake.service import submit_report
from tipline.matching.models import (
    BankEntry,
    BankImport,
    CategoryScheme,
    HashBank,
    HashKind,
    HashMatch,
    JobState,
)
from tipline.matching.worker import HashWorker
from tipline.reports.enums import Source
from tipline.reports.schemas import ReportCreate


def store_file(ctx: AppContext, content: bytes, name: str = "picture.png") -> EvidenceFile:
    """A file reported through the public API path: encrypted into the vault, its row
    attached in the intake transaction (hash_state 'pending')."""
    writer = ctx.blobs.writer(ctx.keys, original_name=name, max_bytes=50_000_000,
                              allowed_types=ctx.settings.allowed_types)
    for start in range(0, len(content), 64_000):
        writer.write(content[start:start + 64_000])
    blob = writer.finish()
    receipt = submit_report(ctx, ReportCreate.model_validate(report_json()), [blob],
                            source=Source.public_api)
    with ctx.sessions() as session:
        return session.execute(select(EvidenceFile)
                               .where(EvidenceFile.report_id == receipt.report_id)).scalar_one()


def reload(ctx: AppContext, evidence: EvidenceFile) -> EvidenceFile:
    with ctx.sessions() as session:
        return session.get_one(EvidenceFile, evidence.id)


def make_bank(ctx: AppContext, name: str, *, threshold: int = 31, enabled: bool = True,
              default_category: str | None = None,
              scheme: CategoryScheme = CategoryScheme.industry) -> uuid.UUID:
    now = clock.now()
    with transaction(ctx.sessions) as session:
        bank = HashBank(id=uuid.uuid4(), name=name, source="test", description="",
                        category_scheme=scheme, default_category=default_category,
                        pdq_threshold=threshold, enabled=enabled, created_at=now, updated_at=now)
        session.add(bank)
        return bank.id


def add_entries(ctx: AppContext, bank_id: uuid.UUID,
                entries: Sequence[tuple[HashKind, str, str | None]], *,
                import_id: uuid.UUID | None = None,
                frames: dict[str, str] | None = None) -> list[int]:
    """Entries (kind, value, category) by a Core insert, as an import writes them."""
    table = BankEntry.__table__
    ids = []
    with transaction(ctx.sessions) as session:
        for kind, value, category in entries:
            ids.append(session.execute(insert(table).values(
                bank_id=bank_id, kind=kind, value=value, category=category, label="",
                frames=(frames or {}).get(value), added_at=clock.now(), import_id=import_id,
            ).returning(table.c.id)).scalar_one())  # type: ignore[attr-defined]
    return ids


def finished_import(ctx: AppContext, bank_id: uuid.UUID,
                    entries: Sequence[tuple[HashKind, str, str | None]],
                    frames: dict[str, str] | None = None) -> tuple[uuid.UUID, list[int]]:
    """What a finished import leaves: its row (state done) and its entries."""
    import_id = uuid.uuid4()
    with transaction(ctx.sessions) as session:
        session.add(BankImport(id=import_id, bank_id=bank_id, filename="known.csv", format="csv",
                               actor="admin", state=JobState.done, started_at=clock.now(),
                               finished_at=clock.now(), lines=len(entries), added=len(entries),
                               duplicates=0, rejected=0, rejects=[], error="",
                               rematch_total=0, rematch_done=0))
    return import_id, add_entries(ctx, bank_id, entries, import_id=import_id, frames=frames)


def vpdq_value(frames: str) -> str:
    return hashlib.sha256(frames.encode()).hexdigest()


def custody(ctx: AppContext, evidence_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    import json

    with ctx.sessions() as session:
        rows = session.execute(select(CustodyEvent).where(CustodyEvent.evidence_id == evidence_id)
                               .order_by(CustodyEvent.at)).scalars()
        return [(row.action, json.loads(row.details)) for row in rows]


def matches_of(ctx: AppContext, evidence_id: uuid.UUID) -> list[HashMatch]:
    with ctx.sessions() as session:
        return list(session.execute(select(HashMatch).where(HashMatch.evidence_id == evidence_id)
                                    .order_by(HashMatch.entry_id)).scalars())


@pytest.fixture
def worker(ctx: AppContext) -> Iterator[HashWorker]:
    """A worker with two hashing processes, driven pass by pass with run_once."""
    hashing = HashWorker(ctx, workers=2)
    yield hashing
    hashing.close()


def with_settings(ctx: AppContext, **changes: Any) -> AppContext:
    return replace(ctx, settings=ctx.settings.model_copy(update=changes))
