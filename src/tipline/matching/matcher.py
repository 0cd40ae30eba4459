"""Matching a file's (or a submitted hash's) hashes against the enabled banks, and storing
what matched.

Exact kinds (MD5, SHA-1, SHA-256) are one SQL lookup on hash_bank_entry(kind, value). PDQ
goes through the process-wide `MatchIndex`: every PDQ entry of every bank (enabled or not:
enabling a bank then needs no reload), asked with the largest threshold among enabled
banks; each hit is then kept only if its own bank is enabled and its distance is within
that bank's threshold. vPDQ entries are few (banks hold far fewer videos than images), so
they are compared one by one with `compare_vpdq`: a linear pass over frames kept in memory.

A match is a HashMatch row, a custody event "matched" (for a file) and, once per report,
a "known material" reason that raises the report's triage priority; all in the caller's
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Select, bindparam, select, union_all
from sqlalchemy.orm import Session

from tipline import clock
from tipline.audit import service as audit
from tipline.db import new_id
from tipline.evidence import service as evidence_service
from tipline.evidence.models import EvidenceFile
from tipline.matching.bank_index import MatchIndex
from tipline.matching.banks import visible_entries
from tipline.matching.hashing import parse_frames
from tipline.matching.index import MAX_DISTANCE
from tipline.matching.models import BankEntry, HashBank, HashKind, HashMatch, SubmittedHash
from tipline.matching.perceptual import PDQ_QUALITY_THRESHOLD, VpdqFrame, compare_vpdq
from tipline.reports.models import Report
from tipline.triage import priority

ACTOR = "system:matching"
KNOWN_KEY = "known_material"
KNOWN_PREFIX = "known material"
EXACT_KINDS = (HashKind.md5, HashKind.sha1, HashKind.sha256)
Hit = tuple[int, int]  # (entry id, distance)


@dataclass(frozen=True)
class Probe:
    """The hashes of one thing to look up: a stored file or a submitted hash."""

    report_id: uuid.UUID
    evidence_id: uuid.UUID | None = None
    submitted_hash_id: uuid.UUID | None = None
    exact: tuple[tuple[HashKind, str], ...] = ()
    pdq: bytes | None = None  # only a matchable one (quality >= 50, as HMA)
    vpdq: tuple[VpdqFrame, ...] = ()

    @classmethod
    def of_evidence(cls, row: EvidenceFile) -> Probe:
        exact = tuple((kind, value) for kind, value in
                      ((HashKind.md5, row.md5), (HashKind.sha1, row.sha1),
                       (HashKind.sha256, row.sha256)) if value)
        good = row.pdq is not None and (row.pdq_quality or 0) >= PDQ_QUALITY_THRESHOLD
        return cls(report_id=row.report_id, evidence_id=row.id, exact=exact,
                   pdq=bytes.fromhex(row.pdq) if good and row.pdq else None,
                   vpdq=tuple(parse_frames(row.vpdq_frames)) if row.vpdq_frames else ())

    @classmethod
    def of_submitted(cls, row: SubmittedHash) -> Probe:
        if row.report_id is None:
            raise ValueError("a submitted hash is matched once its report is filed")
        probe = cls(report_id=row.report_id, submitted_hash_id=row.id)
        if row.kind in EXACT_KINDS:
            return replace(probe, exact=((row.kind, row.value.lower()),))
        if row.kind is HashKind.pdq:
            # A partner may send no quality; only a known low one is refused.
            good = row.quality is None or row.quality >= PDQ_QUALITY_THRESHOLD
            return replace(probe, pdq=bytes.fromhex(row.value) if good else None)
        return replace(probe, vpdq=tuple(parse_frames(row.frames)) if row.frames else ())


# ---- finding and storing matches --------------------------------------------------------


_ENABLED_THRESHOLDS = select(HashBank.id, HashBank.pdq_threshold).where(HashBank.enabled)


def enabled_thresholds(session: Session) -> dict[uuid.UUID, int]:
    rows = session.execute(_ENABLED_THRESHOLDS)
    return {bank_id: min(threshold, MAX_DISTANCE) for bank_id, threshold in rows}


def _exact_branch(kind: HashKind) -> Select[int, HashKind, str]:
    return (select(BankEntry.id, BankEntry.kind, BankEntry.value)
            .join(HashBank, HashBank.id == BankEntry.bank_id)
            .where(BankEntry.kind == kind,
                   BankEntry.value.in_(bindparam(f"values_{kind.value}", expanding=True)),
                   HashBank.enabled, visible_entries()))


# Entries of enabled banks with one of these MD5, SHA-1 or SHA-256 values: one statement,
# built once, one branch per kind. Per kind is the form both databases search by the
# (kind, value) index (see tipline.triage.correlation); an empty list matches nothing.
_EXACT_ENTRIES = union_all(*(_exact_branch(kind) for kind in EXACT_KINDS))


def find_hits(session: Session, index: MatchIndex | None, probe: Probe, *,
              thresholds: dict[uuid.UUID, int] | None = None) -> list[Hit]:
    """Candidate entries for one probe; `store_matches` applies the banks' rules.
    (`thresholds`: enabled_thresholds, when the caller has them for many probes.)"""
    return find_all_hits(session, index, [probe], thresholds=thresholds)[0]


def find_all_hits(session: Session, index: MatchIndex | None, probes: Sequence[Probe], *,
                  thresholds: dict[uuid.UUID, int] | None = None) -> list[list[Hit]]:
    """find_hits for several probes, with one SQL lookup for all their exact hashes."""
    found: list[list[Hit]] = [[] for _ in probes]
    wanted: dict[HashKind, set[str]] = {kind: set() for kind in EXACT_KINDS}
    for probe in probes:
        for kind, value in probe.exact:
            wanted[kind].add(value)
    if any(wanted.values()):
        entries: dict[tuple[HashKind, str], list[int]] = {}
        values = {f"values_{kind.value}": sorted(found) for kind, found in wanted.items()}
        for entry_id, kind, value in session.execute(_EXACT_ENTRIES, values):
            entries.setdefault((kind, value), []).append(entry_id)
        for hits, probe in zip(found, probes, strict=True):
            hits += [(entry_id, 0) for pair in probe.exact for entry_id in entries.get(pair, [])]
    perceptual = [i for i, probe in enumerate(probes) if probe.pdq is not None or probe.vpdq]
    if index is None or not perceptual:
        return found
    if thresholds is None:
        thresholds = enabled_thresholds(session)
    if not thresholds:
        return found
    with_pdq = [i for i in perceptual if probes[i].pdq is not None]
    pdq_found = index.pdq_hits([probes[i].pdq for i in with_pdq],  # type: ignore[misc]
                               max(thresholds.values()))
    for i, matches in zip(with_pdq, pdq_found, strict=True):
        found[i] += matches
    for i in perceptual:
        if probes[i].vpdq:
            found[i] += vpdq_hits(probes[i].vpdq, index.vpdq_entries(), thresholds)
    return found


def vpdq_hits(frames: Sequence[VpdqFrame],
              entries: Sequence[tuple[int, uuid.UUID, tuple[VpdqFrame, ...]]],
              thresholds: dict[uuid.UUID, int]) -> list[Hit]:
    """Entries of enabled banks whose video is found in these frames (the vPDQ reference
    rule: 80 % of the entry's frames within the bank's distance). The distance stored for a
    vPDQ match is the percentage of the entry's frames that were not found."""
    hits: list[Hit] = []
    for entry_id, bank_id, target in entries:
        if bank_id not in thresholds:
            continue
        result = compare_vpdq(frames, target, distance=thresholds[bank_id])
        if result.is_match():
            hits.append((entry_id, round(100.0 - result.target_match_percent)))
    return hits


def store_matches(session: Session, probe: Probe, hits: Sequence[Hit], *, actor: str = ACTOR,
                  evidence: EvidenceFile | None = None) -> list[HashMatch]:
    """A HashMatch per new (file or submitted hash, entry) pair of an enabled bank within
    its threshold, with its custody event; the report's priority rises with the first."""
    best: dict[int, int] = {}
    for entry_id, distance in hits:
        best[entry_id] = min(distance, best.get(entry_id, distance))
    if not best:
        return []
    subject = (HashMatch.evidence_id == probe.evidence_id if probe.evidence_id
               else HashMatch.submitted_hash_id == probe.submitted_hash_id)
    existing = set(session.execute(select(HashMatch.entry_id).where(subject)).scalars())
    rows = sorted(session.execute(
        select(BankEntry.id, BankEntry.kind, BankEntry.category, HashBank)
        .join(HashBank, HashBank.id == BankEntry.bank_id)
        .where(BankEntry.id.in_(sorted(best)), HashBank.enabled, visible_entries())),
        key=lambda row: (best[row[0]], row[3].name, row[0]))
    if probe.evidence_id is not None and evidence is None:
        evidence = session.get(EvidenceFile, probe.evidence_id)
    made: list[tuple[HashMatch, HashBank]] = []
    now = clock.now()
    for entry_id, kind, category, bank in rows:
        distance = best[entry_id]
        if entry_id in existing or (kind is HashKind.pdq
                                    and distance > min(bank.pdq_threshold, MAX_DISTANCE)):
            continue
        match = HashMatch(id=new_id(), report_id=probe.report_id, evidence_id=probe.evidence_id,
                          submitted_hash_id=probe.submitted_hash_id, bank_id=bank.id,
                          entry_id=entry_id, kind=kind, distance=distance,
                          category=category or bank.default_category, matched_at=now)
        session.add(match)
        made.append((match, bank))
        details = {"bank": bank.name, "kind": kind.value, "distance": distance,
                   "category": match.category}
        if evidence is not None:
            evidence_service.record_custody(session, evidence, action="matched", actor=actor,
                                            details=details)
        else:
            audit.record(session, actor=actor, action="hash.matched", object_type="submitted_hash",
                         object_id=str(probe.submitted_hash_id), details=details)
    if made:
        first, bank = made[0]
        raise_priority(session, probe.report_id, known_reason(first.category, bank.name),
                       actor=actor)
    return [match for match, _bank in made]


def known_reason(category: str | None, bank_name: str) -> str:
    return f"{KNOWN_PREFIX}: {category or 'no category'} in bank {bank_name}"


def raise_priority(session: Session, report_id: uuid.UUID, reason: str, *, actor: str) -> bool:
    """Add the known-material points and reason to the report, once.

    Not a full `priority.apply`: the reasons other channels gave when the report was filed
    (a partner's escalation, its annotations) are stored only as text, so recomputing would
    drop them. The score gains exactly the points `compute` gives a known-material reason,
    the reason goes where `compute` would rank it, and the due time follows the score."""
    report = session.get(Report, report_id, with_for_update=True)
    if report is None:
        return False
    reasons = list(report.priority_reasons or [])
    if any(existing.startswith(KNOWN_PREFIX) for existing in reasons):
        return False
    ranked = priority.compute(report, extra={KNOWN_KEY: reason}).reasons
    higher = set(ranked[:ranked.index(reason)])
    position = next((i for i, existing in enumerate(reasons) if existing not in higher),
                    len(reasons))
    before = report.priority_score
    report.priority_score = before + priority.POINTS[KNOWN_KEY]
    report.priority_reasons = [*reasons[:position], reason, *reasons[position:]]
    report.due_at = priority.due(report.created_at, report.priority_score)
    audit.record(session, actor=actor, action="report.priority", object_type="report",
                 object_id=str(report.id),
                 details={"from": before, "to": report.priority_score, "reason": reason})
    return True


def match_evidence(session: Session, index: MatchIndex | None, rows: Sequence[EvidenceFile], *,
                   actor: str = ACTOR,
                   thresholds: dict[uuid.UUID, int] | None = None) -> list[HashMatch]:
    """Match stored files by the hashes on their rows, in the caller's transaction."""
    probes = [Probe.of_evidence(row) for row in rows]
    made: list[HashMatch] = []
    for row, probe, hits in zip(rows, probes, find_all_hits(session, index, probes,
                                                            thresholds=thresholds), strict=True):
        if hits:
            made += store_matches(session, probe, hits, actor=actor, evidence=row)
    return made
