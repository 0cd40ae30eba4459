"""`tipline directory`: load the directory of organisations and emergency numbers."""

from __future__ import annotations

from pathlib import Path

import click

from tipline.cli.common import Progress, load_settings, unit_of_work
from tipline.errors import InvalidInput
from tipline.routing import service
from tipline.routing.directory import country_name


@click.group()
def directory() -> None:
    """The directory of organisations and emergency numbers."""


def _fail(exc: InvalidInput) -> click.ClickException:
    lines = [exc.message, *(f"  {where}: {text}" for where, text in exc.errors.items())]
    return click.ClickException("\n".join(lines))


@directory.command("import")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(file: Path | None) -> None:
    """Load FILE (default: the directory bundled with Tipline). The whole file is checked
    first; if anything is wrong nothing changes."""
    source = file if file is not None else service.bundled_directory()
    try:
        # Checking before opening the database keeps a bad file from touching anything.
        service.read_directory(source)
        with unit_of_work(load_settings()) as session:
            result = service.import_directory(
                session, source, actor="cli", progress=Progress("Importing directory"),
            )
    except InvalidInput as exc:
        raise _fail(exc) from exc
    click.echo(
        f"Organisations: {result.added} added, {result.updated} updated, "
        f"{result.removed} removed, {result.unchanged} unchanged."
    )
    click.echo(
        f"Emergency numbers: {result.emergency_added} added, {result.emergency_updated} updated, "
        f"{result.emergency_removed} removed, {result.emergency_unchanged} unchanged."
    )


@directory.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(file: Path) -> None:
    """Check FILE without importing it."""
    try:
        data = service.read_directory(file)
    except InvalidInput as exc:
        raise _fail(exc) from exc
    click.echo(f"{file.name}: {len(data.organisations)} organisations, "
               f"{len(data.emergency)} countries with emergency numbers. No problems found.")


@directory.command("show")
@click.argument("country")
def show(country: str) -> None:
    """Show what the directory holds for COUNTRY (ISO code such as GB)."""
    code = country.strip().upper()
    if code not in service.COUNTRIES:
        raise click.ClickException(f"{country!r} is not an ISO 3166-1 alpha-2 country code.")
    with unit_of_work(load_settings()) as session:
        numbers = service.emergency_numbers(session, code)
        orgs = service.list_organisations(session, country=code)
    click.echo(f"{country_name(code, 'en')} ({code})")
    if numbers is None:
        click.echo("  Emergency: none listed")
    else:
        how = "chosen by hand" if numbers.labelled else "chosen by rule"
        others = ", ".join(numbers.others) or "none"
        click.echo(f"  Emergency: {numbers.primary} ({how}); others: {others}")
    if not orgs:
        click.echo("  No organisations.")
    for org in orgs:
        flag = "  [unconfirmed]" if org.verify else ""
        where = f" {','.join(org.subdivisions)}" if org.subdivisions else ""
        click.echo(f"  {org.id} [{org.kind}{where}] {org.name}{flag}")
        for label, value in (("phone", org.phone), ("report", org.report_url), ("web", org.url)):
            if value:
                click.echo(f"      {label}: {value}")
