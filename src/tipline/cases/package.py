"""The referral package: one ZIP file an agency can keep, print and check offline.

It holds the report as JSON, a printable summary, the evidence files decrypted, the items
the agency collected, the custody log, and `manifest.json` listing the SHA-256 of every
other file, signed with the instance's Ed25519 key (`manifest.sig`). The archive is in a
canonical encoding (see canonzip), so changing any byte of it makes verification fail.
Building a package is itself a custody event "exported" for every file and item in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline import clock, crypto
from tipline.accounts.models import Agency
from tipline.accounts.service import StaffUser
from tipline.cases import canonzip
from tipline.cases import service as cases
from tipline.cases.models import CollectedItem, ItemCustodyEvent, Referral
from tipline.errors import Conflict, NotFound
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import BlobStore
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.i18n import _
from tipline.messaging import service as messaging
from tipline.reports.models import Report

FORMAT = "tipline-referral-package/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_REPORT_FIELDS = (
    "reference", "source", "status", "created_at", "reporter_role", "incident_types",
    "confirmed_types", "frequency", "certainty", "happened_on", "happened_period",
    "immediate_danger", "platform", "urls", "suspect", "child_age_band", "child_country",
    "child_region", "reporter_country", "description", "sextortion", "meeting_planned",
    "meeting_details", "anonymous", "language", "triaged_at", "referred_at", "closed_at",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return value


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=_plain) + "\n").encode()


def public_key(keys_dir: Path) -> bytes:
    return crypto.signing_public_key(crypto.load_or_create_signing_key(keys_dir))


@dataclass(frozen=True)
class Package:
    filename: str
    data: bytes
    fingerprint: str


@dataclass(frozen=True)
class _Sources:
    report: Report
    agency: Agency
    files: list[EvidenceFile]
    items: list[CollectedItem]


def _evidence_path(index: int, item: EvidenceFile) -> str:
    extension = mimetypes.guess_extension(item.media_type) or ".bin"
    return f"evidence/{index:02d}-{item.sha256[:16]}{extension}"


def build_package(session: Session, *, keys: crypto.Keys, blobs: BlobStore, keys_dir: Path,
                  referral: Referral, staff: StaffUser, site_name: str) -> Package:
    """Build the signed package and record the export in the caller's transaction."""
    report = session.get(Report, referral.report_id)
    agency = session.get(Agency, referral.agency_id)
    if report is None or agency is None:
        raise NotFound(_("There is no page at this address."))
    src = _Sources(report, agency, evidence.list_for_report(session, report.id),
                   cases.items(session, referral.id))
    paths = {f.id: _evidence_path(i, f) for i, f in enumerate(src.files, start=1)}
    for f in src.files:
        evidence.record_custody(session, f, action="exported", actor=staff.actor,
                                details={"referral": str(referral.id), "agency": agency.name,
                                         "path": paths[f.id]})
    for item in src.items:
        cases.record_custody(session, item, action="exported", actor=staff.actor,
                             details={"referral": str(referral.id), "agency": agency.name})
    session.flush()
    entries: list[tuple[str, bytes]] = [
        ("summary.txt", _summary(session, src, referral, paths).encode()),
        ("report.json", _report_json(session, keys, src, referral, paths)),
        ("collected_items.json", _json([_item_dict(i) for i in src.items])),
        ("custody.json", _custody_json(session, src, paths)),
    ]
    for f in src.files:
        data = b"".join(evidence.read_plaintext(blobs, keys, f))
        if hashlib.sha256(data).hexdigest() != f.sha256:
            raise Conflict(_("An evidence file does not match its recorded digest; run `tipline vault verify`."))
        entries.append((paths[f.id], data))
    private = crypto.load_or_create_signing_key(keys_dir)
    public = crypto.signing_public_key(private)
    fingerprint = crypto.key_fingerprint(public)
    manifest = _json({
        "format": FORMAT, "site": site_name, "created_at": clock.now(), "created_by": staff.actor,
        "report": report.reference, "referral": str(referral.id), "agency": agency.name,
        "files": [{"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                  for name, data in entries],
        "signature": {"algorithm": "Ed25519", "file": SIGNATURE,
                      "public_key": base64.b64encode(public).decode(), "fingerprint": fingerprint},
    })
    signature = base64.b64encode(crypto.sign_detached(private, manifest)) + b"\n"
    cases.record_event(session, referral.id, "exported", staff.actor,
                       {"files": len(src.files), "items": len(src.items),
                        "manifest_sha256": hashlib.sha256(manifest).hexdigest()})
    data = canonzip.encode([(MANIFEST, manifest), (SIGNATURE, signature), *entries])
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    return Package(f"{report.reference}-{stamp}.zip", data, fingerprint)


def _report_json(session: Session, keys: crypto.Keys, src: _Sources, referral: Referral,
                 paths: dict[Any, str]) -> bytes:
    report = src.report
    return _json({
        "report": {name: getattr(report, name) for name in _REPORT_FIELDS},
        "referral": {
            "id": str(referral.id), "agency": src.agency.name, "status": referral.status,
            "reason": referral.reason, "referred_at": referral.referred_at,
            "decided_at": referral.decided_at, "decision_reason": referral.decision_reason,
            "outcome": referral.outcome, "closed_at": referral.closed_at,
            "timeline": [{"at": e.at, "actor": e.actor, "step": e.kind, "details": e.details}
                         for e in cases.events(session, referral.id)],
        },
        "evidence": [{"path": paths[f.id], "original_name": evidence.original_name(keys, f),
                      "media_type": f.media_type, "size": f.size, "sha256": f.sha256,
                      "md5": f.md5, "received_at": f.received_at} for f in src.files],
        # Questions to the reporter and their answers; internal notes stay in Tipline.
        "messages": [{"at": m.created_at, "from": m.author, "text": m.body}
                     for m in messaging.list_messages(session, keys, report.id)],
    })


def _item_dict(item: CollectedItem) -> dict[str, Any]:
    return {"id": str(item.id), "description": item.description,
            "acquired_where": item.acquired_where, "acquired_how": item.acquired_how,
            "sha256": item.sha256, "collected_by": item.collected_by,
            "collected_at": item.collected_at, "recorded_at": item.recorded_at}


def _custody_json(session: Session, src: _Sources, paths: dict[Any, str]) -> bytes:
    vault_events: list[CustodyEvent] = list(session.execute(
        select(CustodyEvent).where(CustodyEvent.evidence_id.in_([f.id for f in src.files]))
        .order_by(CustodyEvent.at, CustodyEvent.id)).scalars()) if src.files else []
    item_events: list[ItemCustodyEvent] = cases.item_custody(session, [i.id for i in src.items])
    return _json({
        "evidence_files": [{"file": paths[e.evidence_id], "at": e.at, "action": e.action,
                            "actor": e.actor, "sha256": e.sha256, "details": json.loads(e.details or "{}")}
                           for e in vault_events],
        "collected_items": [{"item": str(e.item_id), "at": e.at, "action": e.action,
                             "actor": e.actor, "sha256": e.sha256, "details": json.loads(e.details or "{}")}
                            for e in item_events],
    })


def _summary(session: Session, src: _Sources, referral: Referral, paths: dict[Any, str]) -> str:
    report = src.report
    lines = [
        _("Referral package for report %(ref)s") % {"ref": report.reference},
        "=" * 60,
        _("Agency: %(agency)s") % {"agency": src.agency.name},
        _("Referred: %(at)s — reason: %(reason)s") % {"at": referral.referred_at.isoformat(), "reason": referral.reason},
        _("Status of the report: %(status)s") % {"status": report.status.value},
        _("Outcome: %(outcome)s") % {"outcome": referral.outcome.value if referral.outcome else "—"},
        "",
        _("Reported as: %(types)s") % {"types": ", ".join(report.confirmed_types or report.incident_types)},
        _("Received: %(at)s") % {"at": report.created_at.isoformat()},
        _("Platform: %(platform)s") % {"platform": report.platform or "—"},
        _("Links: %(urls)s") % {"urls": ", ".join(report.urls) or "—"},
        _("Child: age %(age)s, %(country)s %(region)s") % {
            "age": report.child_age_band.value, "country": report.child_country or "?", "region": report.child_region},
        "",
        _("Description:"),
        report.description,
        "",
        _("Evidence files (decrypted in this package):"),
        *[f"  {paths[f.id]}  SHA-256 {f.sha256}  ({f.size} B)" for f in src.files],
        "",
        _("Items collected by the agency:"),
        *[f"  {i.description} — {i.acquired_where}; {i.acquired_how} — SHA-256 {i.sha256} — "
          f"{i.collected_by}, {i.collected_at.isoformat()}" for i in src.items],
        "",
        _("Every file in this package is listed with its SHA-256 in manifest.json, which is "
          "signed (manifest.sig). Check it with: tipline package verify FILE"),
    ]
    return "\n".join(lines) + "\n"


# --- offline verification --------------------------------------------------------------

@dataclass
class Verification:
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.checks)


def read_public_key(content: bytes) -> bytes:
    """A public key file: base64 text (as Tipline serves it) or the 32 raw bytes."""
    if len(content) == crypto.PUBLIC_KEY_BYTES:
        return content
    try:
        key = base64.b64decode(content.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the public key file is neither base64 text nor 32 raw bytes") from exc
    if len(key) != crypto.PUBLIC_KEY_BYTES:
        raise ValueError("the public key file does not hold a 32-byte Ed25519 key")
    return key


def verify_package(data: bytes, *, pinned_key: bytes | None = None) -> Verification:
    """Check the archive's encoding, every digest in the manifest and the signature."""
    result = Verification()
    try:
        entries = dict(canonzip.decode(data))
    except canonzip.ArchiveError as exc:
        result.failures.append(str(exc))
        return result
    result.checks.append(f"archive: {len(entries)} entries, canonical encoding")
    manifest_bytes, signature_text = entries.pop(MANIFEST, None), entries.pop(SIGNATURE, None)
    if manifest_bytes is None or signature_text is None:
        result.failures.append("manifest.json or manifest.sig is missing")
        return result
    try:
        manifest = json.loads(manifest_bytes)
        key = base64.b64decode(manifest["signature"]["public_key"], validate=True)
        listed = {str(f["path"]): (str(f["sha256"]), int(f["size"])) for f in manifest["files"]}
        signature = base64.b64decode(signature_text.strip(), validate=True)
        claimed_fingerprint = str(manifest["signature"]["fingerprint"])
    except (ValueError, KeyError, TypeError) as exc:
        result.failures.append(f"manifest is malformed ({type(exc).__name__})")
        return result
    _check_signature(result, manifest_bytes, signature, key, claimed_fingerprint, pinned_key)
    for path, (expected, size) in sorted(listed.items()):
        content = entries.get(path)
        if content is None:
            result.failures.append(f"{path}: listed in the manifest but missing")
        elif hashlib.sha256(content).hexdigest() != expected or len(content) != size:
            result.failures.append(f"{path}: SHA-256 or size does not match the manifest")
        else:
            result.checks.append(f"{path}: SHA-256 {expected} ({size} bytes) OK")
    for path in sorted(set(entries) - set(listed)):
        result.failures.append(f"{path}: in the archive but not in the manifest")
    return result


def _check_signature(result: Verification, manifest: bytes, signature: bytes, key: bytes,
                     claimed_fingerprint: str, pinned_key: bytes | None) -> None:
    if len(key) != crypto.PUBLIC_KEY_BYTES:
        result.failures.append("the manifest's public key is not an Ed25519 key")
        return
    result.fingerprint = crypto.key_fingerprint(key)
    if claimed_fingerprint != result.fingerprint:
        result.failures.append("the manifest's key fingerprint does not match its key")
    if pinned_key is not None and pinned_key != key:
        result.failures.append(
            f"signed by key {result.fingerprint}, not by the given key {crypto.key_fingerprint(pinned_key)}")
    if crypto.verify_detached(key, manifest, signature):
        result.checks.append(f"signature: Ed25519 by key {result.fingerprint} OK"
                             + (" (the given key)" if pinned_key == key else ""))
    else:
        result.failures.append("signature: manifest.json is not signed by the key it names")
