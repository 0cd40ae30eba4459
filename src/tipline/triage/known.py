"""Hash-first triage: what the analyst is told about files already known from a hash bank,
so that nobody has to look at them again, and the recorded reveal when someone must."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.errors import InvalidInput
from tipline.evidence import service as evidence
from tipline.evidence.models import CustodyEvent, EvidenceFile
from tipline.i18n import _
from tipline.matching import service as matching
from tipline.matching.models import CategoryScheme, HashMatch

MAX_REASON = 500


def _category_names() -> dict[CategoryScheme, dict[str, str]]:
    # Short labels only: the scheme's own names, never a description of the content.
    return {
        CategoryScheme.industry: {
            "A1": _("A1 – prepubescent minor, sex act"),
            "A2": _("A2 – prepubescent minor, lascivious exhibition"),
            "B1": _("B1 – pubescent minor, sex act"),
            "B2": _("B2 – pubescent minor, lascivious exhibition"),
        },
        CategoryScheme.vics: {
            "0": _("VICS 0 – non-pertinent"),
            "1": _("VICS 1 – Child Abuse Material"),
            "2": _("VICS 2 – child exploitive (non-CAM) / age difficult"),
            "3": _("VICS 3 – CGI / animation, child exploitive"),
            "4": _("VICS 4 – comparison image"),
        },
        CategoryScheme.interpol: {
            "baseline": _("INTERPOL baseline"),
            "national": _("nationally illegal"),
        },
        CategoryScheme.iwf: {
            "A": _("UK category A"), "B": _("UK category B"), "C": _("UK category C"),
        },
    }


def category_label(scheme: CategoryScheme, category: str | None) -> str:
    if not category:
        return _("no category")
    return _category_names().get(scheme, {}).get(category, category)


@dataclass(frozen=True)
class KnownMatch:
    bank_name: str
    code: str | None  # the category as the bank stores it
    category: str  # its label
    kind: str
    distance: int
    matched_at: datetime


@dataclass(frozen=True)
class KnownSummary:
    """The report's files found in hash banks: per file, and for the top of the page."""

    files: dict[uuid.UUID, list[KnownMatch]]
    total_files: int
    categories: list[str]
    all_known: bool

    @property
    def known_count(self) -> int:
        return len(self.files)


def _known(m: matching.MatchSummary) -> KnownMatch:
    return KnownMatch(m.bank_name, m.category, category_label(m.category_scheme, m.category),
                      m.kind.value, m.distance, m.matched_at)


def summarise(session: Session, report_id: uuid.UUID, total_files: int) -> KnownSummary:
    files = {evidence_id: [_known(m) for m in matches]
             for evidence_id, matches in matching.known_evidence_ids(session, report_id).items()}
    categories = sorted({m.category for matches in files.values() for m in matches if m.code})
    all_known = bool(files) and matching.report_is_all_known(session, report_id)
    return KnownSummary(files, total_files, categories, all_known)


def file_matches(session: Session, item: EvidenceFile) -> list[KnownMatch]:
    """The banks this file was found in (empty: not known)."""
    return [_known(m) for m in matching.known_evidence_ids(session, item.report_id).get(item.id, [])]


def require_reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise InvalidInput(_("This file is known material: say why you need to see it "
                             "(for example victim identification)."), field="reason")
    return text


def reveal_known(session: Session, item: EvidenceFile, matches: list[KnownMatch], *, actor: str,
                 reason: str, extra: dict[str, Any] | None = None) -> CustodyEvent:
    """Open a file already known from a bank: only with a reason, and on the record (the
    custody event writes its audit row in the same transaction)."""
    text = require_reason(reason)
    details: dict[str, Any] = {
        "reason": text[:MAX_REASON], "known_material": True,
        "banks": sorted({m.bank_name for m in matches}),
        "categories": sorted({m.code for m in matches if m.code}),
        **(extra or {}),
    }
    return evidence.record_custody(session, item, action="revealed", actor=actor, details=details)


def reports_with_matches(session: Session, report_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The reports among these with at least one file or hash found in a bank."""
    if not report_ids:
        return set()
    rows = session.execute(select(HashMatch.report_id).where(HashMatch.report_id.in_(report_ids))
                           .distinct()).scalars()
    return set(rows)
