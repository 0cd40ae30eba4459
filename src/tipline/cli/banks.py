"""`tipline banks create NAME | list | import NAME FILE | export NAME -o FILE | enable NAME |
disable NAME | set-threshold NAME N`: banks of known hashes (MD5, SHA-1, SHA-256, PDQ, vPDQ)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session, sessionmaker

from tipline.cli.common import load_settings, unit_of_work
from tipline.db import make_engine, make_sessionmaker, transaction
from tipline.errors import TiplineError
from tipline.matching import banks as service
from tipline.matching import exports, imports
from tipline.matching.models import BankImport, CategoryScheme, HashKind, JobState

ACTOR = "cli"
SHOWN_REJECTS = 20


@click.group()
def banks() -> None:
    """Hash banks: lists of known material matched against every file."""


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except TiplineError as exc:
        raise click.ClickException(exc.message) from exc


@banks.command("create")
@click.argument("name")
@click.option("--scheme", required=True, type=click.Choice([s.value for s in CategoryScheme]),
              help="How entries are categorised (industry A1-B2, interpol, vics 0-4, iwf A-C, custom).")
@click.option("--source", default="", help="Where the list comes from.")
@click.option("--description", default="")
@click.option("--default-category", default=None,
              help="Category of entries that arrive without one.")
@click.option("--threshold", default=31, show_default=True, type=int,
              help="Largest PDQ distance that counts as a match.")
def create(name: str, scheme: str, source: str, description: str,
           default_category: str | None, threshold: int) -> None:
    """Create an empty, enabled bank."""
    with _errors(), unit_of_work(load_settings()) as session:
        service.create_bank(session, name=name, category_scheme=CategoryScheme(scheme),
                            source=source, description=description,
                            default_category=default_category, pdq_threshold=threshold,
                            actor=ACTOR)
    click.echo(f"bank {name!r} created")


@banks.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the banks as JSON.")
def list_banks(as_json: bool) -> None:
    """Every bank with its entries per kind and its last import."""
    with unit_of_work(load_settings()) as session:
        rows = [_summary_row(summary) for summary in service.list_banks(session)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no banks; create one with `tipline banks create NAME --scheme ...`")
        return
    header = ("NAME", "ENABLED", "SCHEME", "THRESHOLD", "ENTRIES", "LAST IMPORT")
    table = [header] + [(
        row["name"], "yes" if row["enabled"] else "no", row["scheme"], str(row["threshold"]),
        "  ".join(f"{kind} {count:,}" for kind, count in row["entries"].items()) or "-",
        _last_import_text(row["last_import"])) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _summary_row(summary: service.BankSummary) -> dict[str, Any]:
    bank, last = summary.bank, summary.last_import
    return {
        "name": bank.name, "enabled": bank.enabled, "scheme": bank.category_scheme.value,
        "threshold": bank.pdq_threshold, "default_category": bank.default_category,
        "source": bank.source,
        "entries": {kind.value: summary.entries[kind] for kind in HashKind if kind in summary.entries},
        "last_import": None if last is None else {
            "file": last.filename, "state": last.state.value, "added": last.added,
            "rejected": last.rejected, "started_at": last.started_at.isoformat()},
    }


def _last_import_text(last: dict[str, Any] | None) -> str:
    if last is None:
        return "-"
    return f"{last['started_at'][:16].replace('T', ' ')} {last['state']} +{last['added']:,} {last['file']}"


class ImportProgress:
    """A line on stderr about every second: where the import is, how far, how fast."""

    def __init__(self, name: str, *, interval: float = 1.0) -> None:
        self.name = name
        self.interval = interval
        self.started = self._last = time.monotonic()

    def __call__(self, lines: int, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and done < total:
            return
        self._last = now
        percent = 100 if total == 0 else done * 100 // total
        rate = lines / max(now - self.started, 1e-9)
        click.echo(f"{self.name}: line {lines:,}  {percent}%  {rate:,.0f} lines/s", err=True)


@banks.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "file_format", default="auto", show_default=True,
              type=click.Choice(list(imports.FORMATS)))
@click.option("--kind", type=click.Choice([k.value for k in HashKind]), default=None,
              help="The kind of every hash of a plain list (needed for 64 hex digits: sha256 or pdq).")
def import_file(name: str, file: Path, file_format: str, kind: str | None) -> None:
    """Add the hashes of FILE (plain list, CSV or VICS JSON) to the bank NAME.

    Bad lines are reported and skipped; if the file cannot be read to its end, nothing is
    added. Importing the same file again adds nothing."""
    with _errors(), _sessions() as sessions:
        with transaction(sessions) as session:
            bank_id = service.get_bank_by_name(session, name).id
        record = imports.run_import(
            sessions, bank_id=bank_id, path=file, format=file_format,
            kind=HashKind(kind) if kind else None, actor=ACTOR,
            progress=ImportProgress(file.name), on_note=lambda text: click.echo(f"note: {text}"))
    _print_summary(record)
    if record.state is not JobState.done:
        raise click.ClickException(f"import failed, nothing was added: {record.error}")


def _print_summary(record: BankImport) -> None:
    unit = "records" if record.format == "vics" else "lines"
    click.echo(f"{record.filename} ({record.format}): {record.lines:,} {unit} read, "
               f"{record.added:,} added, {record.duplicates:,} already in the bank, "
               f"{record.rejected:,} rejected")
    for reject in record.rejects[:SHOWN_REJECTS]:
        click.echo(f"  rejected {imports.describe_reject(reject)}")
    if record.rejected > SHOWN_REJECTS:
        kept = len(record.rejects)
        click.echo(f"  … and {record.rejected - SHOWN_REJECTS:,} more "
                   f"(the first {kept:,} are kept with the import)")


@banks.command("export")
@click.argument("name")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "file_format", default="csv", show_default=True,
              type=click.Choice(list(exports.EXPORT_FORMATS)))
def export(name: str, output: Path, file_format: str) -> None:
    """Write the bank's entries to a file (CSV, or VICS JSON for its MD5 and SHA-1 entries)."""
    with _errors(), unit_of_work(load_settings()) as session:
        bank = service.get_bank_by_name(session, name)
        with output.open("w", encoding="utf-8", newline="") as out:
            result = exports.export_bank(session, bank, out, file_format, actor=ACTOR)
    click.echo(f"{result.written:,} entries written to {output}")
    if result.left_out:
        click.echo(f"{result.left_out:,} SHA-256, PDQ or vPDQ entries were left out: VICS "
                   "holds only MD5 and SHA-1.")


def _set_enabled(name: str, *, enabled: bool) -> None:
    with _errors(), unit_of_work(load_settings()) as session:
        service.set_enabled(session, service.get_bank_by_name(session, name), enabled,
                            actor=ACTOR)
    click.echo(f"bank {name!r} {'enabled' if enabled else 'disabled'}")


@banks.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Match files against this bank again."""
    _set_enabled(name, enabled=True)


@banks.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Stop matching files against this bank (its entries stay)."""
    _set_enabled(name, enabled=False)


@banks.command("set-threshold")
@click.argument("name")
@click.argument("threshold", type=int)
def set_threshold(name: str, threshold: int) -> None:
    """Set the largest PDQ distance that counts as a match in this bank."""
    with _errors(), unit_of_work(load_settings()) as session:
        service.set_threshold(session, service.get_bank_by_name(session, name), threshold,
                              actor=ACTOR)
    click.echo(f"bank {name!r}: PDQ threshold {threshold}")


@contextmanager
def _sessions() -> Iterator[sessionmaker[Session]]:
    engine = make_engine(load_settings().resolved_database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()
