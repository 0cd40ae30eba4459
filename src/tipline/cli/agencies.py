"""`tipline agencies`: the agencies that receive referrals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.accounts import service as accounts
from tipline.accounts.models import Agency
from tipline.cli.common import load_settings, unit_of_work
from tipline.routing import service as routing

# The kinds of directory entry that take referrals; helplines and NGOs support, not act.
REFERRAL_KINDS = ("police", "hotline", "child-welfare")


@dataclass
class Created:
    created: Counter[str] = field(default_factory=Counter)
    present: int = 0


def agencies_from_directory(session: Session, countries: Iterable[str] = (), *,
                            actor: str = "cli") -> Created:
    """An agency for every police, hotline and child-welfare entry of the directory (of
    `countries`, or all), covering the entry's states or regions if it lists any, else its
    country. Entries already made into an agency (by `directory_id`) are left alone."""
    wanted = set(countries)
    existing = set(session.scalars(select(Agency.directory_id).where(Agency.directory_id.is_not(None))))
    result = Created()
    for org in routing.list_organisations(session):
        if org.kind not in REFERRAL_KINDS or org.country is None:
            continue
        if wanted and org.country not in wanted:
            continue
        if org.id in existing:
            result.present += 1
            continue
        accounts.create_agency(
            session, name=org.name, kind=org.kind,
            jurisdictions=list(org.subdivisions) or [org.country],
            accepts_anonymous=org.anonymous_reports, directory_id=org.id, actor=actor,
        )
        existing.add(org.id)
        result.created[org.kind] += 1
    return result


@click.group()
def agencies() -> None:
    """The agencies that receive referrals."""


@agencies.command("from-directory")
@click.option("--country", "countries", multiple=True, metavar="CC",
              help="Only this country (ISO code such as US); repeat for more. Default: all.")
def from_directory(countries: tuple[str, ...]) -> None:
    """Create an agency for each police unit, hotline and child-welfare service in the
    imported directory. Running it again creates only what is new."""
    codes = [code.strip().upper() for code in countries]
    unknown = [code for code in codes if code not in routing.COUNTRIES]
    if unknown:
        raise click.ClickException(f"Not ISO 3166-1 alpha-2 country codes: {', '.join(unknown)}.")
    with unit_of_work(load_settings()) as session:
        if not routing.list_organisations(session):
            raise click.ClickException("The directory is empty: run `tipline directory import` first.")
        result = agencies_from_directory(session, codes)
    made = sum(result.created.values())
    kinds = ", ".join(f"{result.created[kind]} {kind}" for kind in REFERRAL_KINDS if result.created[kind])
    click.echo(f"Agencies: {made} created{f' ({kinds})' if kinds else ''}, "
               f"{result.present} already present.")
