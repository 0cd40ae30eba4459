"""Recording, reading and verifying evidence; every touch is a custody event."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipline import clock, crypto
from tipline.audit import service as audit
from tipline.db import new_id
from tipline.errors import NotFound
from tipline.evidence.blobstore import BlobStore, StagedBlob
from tipline.evidence.models import CustodyEvent, EvidenceFile

NAME_CONTEXT = b"tipline:evidence-name"


def record_custody(
    session: Session,
    evidence: EvidenceFile,
    *,
    action: str,
    actor: str,
    details: dict[str, Any] | None = None,
    add: bool = True,
) -> CustodyEvent:
    """A custody event and its audit entry; with add=False the event is not added to the
    session (the caller writes it, e.g. with `db.insert_new`)."""
    event = CustodyEvent(
        id=new_id(), evidence_id=evidence.id, at=clock.now(), action=action, actor=actor,
        sha256=evidence.sha256, details=json.dumps(details or {}, sort_keys=True),
    )
    if add:
        session.add(event)
    audit.record(
        session, actor=actor, action=f"custody.{action}", object_type="evidence",
        object_id=str(evidence.id), details={"sha256": evidence.sha256, **(details or {})},
    )
    return event


def attach_blob(
    session: Session,
    keys: crypto.Keys,
    blob: StagedBlob,
    *,
    report_id: uuid.UUID,
    actor: str,
    message_id: uuid.UUID | None = None,
    add: bool = True,
) -> tuple[EvidenceFile, CustodyEvent]:
    """Record a staged blob and its "received" custody event in the caller's transaction.
    With add=False neither is added to the session: a caller that writes many at once
    (`db.insert_new`) writes them."""
    evidence = EvidenceFile(
        id=new_id(), report_id=report_id, message_id=message_id, blob_name=blob.name,
        wrapped_key=blob.wrapped_key, size=blob.size, media_type=blob.media_type,
        sha256=blob.sha256, md5=blob.md5, received_at=clock.now(),
        name_sealed=crypto.seal(keys.derive("evidence-names"), blob.original_name.encode(), NAME_CONTEXT)
        if blob.original_name else None,
    )
    if add:
        session.add(evidence)
    received = record_custody(session, evidence, action="received", actor=actor, add=add,
                              details={"size": blob.size, "md5": blob.md5, "media_type": blob.media_type})
    return evidence, received


def original_name(keys: crypto.Keys, evidence: EvidenceFile) -> str:
    if evidence.name_sealed is None:
        return ""
    return crypto.unseal(keys.derive("evidence-names"), evidence.name_sealed, NAME_CONTEXT).decode()


def list_for_report(session: Session, report_id: uuid.UUID) -> list[EvidenceFile]:
    return list(
        session.execute(
            select(EvidenceFile).where(EvidenceFile.report_id == report_id)
            .order_by(EvidenceFile.received_at)
        ).scalars()
    )


def get(session: Session, evidence_id: uuid.UUID) -> EvidenceFile:
    evidence = session.get(EvidenceFile, evidence_id)
    if evidence is None:
        raise NotFound("no such evidence file")
    return evidence


def read_plaintext(store: BlobStore, keys: crypto.Keys, evidence: EvidenceFile) -> Iterator[bytes]:
    return store.open_plaintext(keys, evidence.blob_name, evidence.wrapped_key)


@dataclass
class VaultReport:
    checked: int = 0
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.failures


def verify_vault(
    session: Session,
    store: BlobStore,
    keys: crypto.Keys,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> VaultReport:
    """Decrypt every blob, recompute its digests, and pair blobs with rows (orphans are
    only named here: the caller decides whether they are old enough to remove)."""
    result = VaultReport()
    total = session.execute(select(func.count()).select_from(EvidenceFile)).scalar_one()
    known: set[str] = set()
    rows = session.execute(select(EvidenceFile).order_by(EvidenceFile.received_at)).scalars()
    for evidence in rows.yield_per(200):
        known.add(evidence.blob_name)
        result.checked += 1
        problem = _check_one(store, keys, evidence)
        if problem:
            result.failures.append(f"{evidence.id}: {problem}")
        else:
            result.ok += 1
        if progress:
            progress(result.checked, total)
    for name in store.all_names():
        if name not in known:
            result.orphans.append(name)
    return result


def _check_one(store: BlobStore, keys: crypto.Keys, evidence: EvidenceFile) -> str:
    if not store.path_for(evidence.blob_name).exists():
        return "blob file is missing"
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        for chunk in read_plaintext(store, keys, evidence):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    except crypto.DecryptionError as exc:
        return f"does not decrypt: {exc}"
    if size != evidence.size:
        return f"size is {size}, recorded {evidence.size}"
    if sha256.hexdigest() != evidence.sha256:
        return "SHA-256 does not match the recorded digest"
    if md5.hexdigest() != evidence.md5:
        return "MD5 does not match the recorded digest"
    return ""
