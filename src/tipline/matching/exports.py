"""Writing a bank's entries out, streamed from the database (the caller's transaction).

CSV: kind,value,category,label,frames (frames only for vPDQ), which `imports` reads back.
VICS: the 2.0 hash-set form, one Media record per MD5 or SHA-1 entry (the other kinds have
no place in VICS); Category is the number for a vics bank and left out otherwise."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.audit import service as audit
from tipline.errors import InvalidInput
from tipline.matching import banks
from tipline.matching.models import BankEntry, CategoryScheme, HashBank, HashKind

EXPORT_FORMATS = ("csv", "vics")
CSV_HEADER = ("kind", "value", "category", "label", "frames")
VICS_CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media"
_VICS_KEYS = {HashKind.md5: "MD5", HashKind.sha1: "SHA1"}
_YIELD_PER = 10_000


@dataclass(frozen=True)
class ExportResult:
    written: int
    left_out: int  # entries the format cannot hold (VICS: SHA-256, PDQ, vPDQ)


def export_bank(session: Session, bank: HashBank, out: TextIO, format: str = "csv",  # noqa: A002 - the operator's word for it (CLI --format)
                *, actor: str) -> ExportResult:
    """Write the bank's entries to `out` in entry order; audited, since a bank is sensitive."""
    if format not in EXPORT_FORMATS:
        raise InvalidInput(f"Unknown export format {format!r} (use csv or vics).", field="format")
    rows = session.execute(
        select(BankEntry.kind, BankEntry.value, BankEntry.category, BankEntry.label,
               BankEntry.frames)
        .where(BankEntry.bank_id == bank.id, banks.visible_entries()).order_by(BankEntry.id)
        .execution_options(yield_per=_YIELD_PER))
    written = left_out = 0
    if format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for kind, value, category, label, frames in rows:
            writer.writerow((kind.value, value, category or "", label, frames or ""))
            written += 1
    else:
        numbered = bank.category_scheme is CategoryScheme.vics
        out.write('{"@odata.context": ' + json.dumps(VICS_CONTEXT) + ', "value": [')
        for kind, value, category, label, _frames in rows:
            key = _VICS_KEYS.get(kind)
            if key is None:
                left_out += 1
                continue
            media: dict[str, object] = {"MediaID": written + 1, key: value.upper()}
            if numbered and category is not None:
                media["Category"] = int(category)
            if label:
                media["Comments"] = label
            out.write(("\n" if written == 0 else ",\n") + json.dumps(media, ensure_ascii=False))
            written += 1
        out.write("\n]}\n")
    audit.record(session, actor=actor, action="bank.export", object_type="hash_bank",
                 object_id=str(bank.id),
                 details={"name": bank.name, "format": format, "entries": written})
    return ExportResult(written, left_out)
