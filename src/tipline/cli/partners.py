"""`tipline partners create NAME`: accounts for the partner (ESP) API.
`tipline partners purge-expired`: delete open partner reports past their expiry."""

from __future__ import annotations

import json

import click

from tipline.app import build_context
from tipline.cli.common import load_settings, unit_of_work
from tipline.esp import service
from tipline.esp.xml import EspError
from tipline.settings import Surface


@click.group()
def partners() -> None:
    """Partner accounts (tech companies reporting through the API)."""


@partners.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
def create(name: str, as_json: bool) -> None:
    """Create a partner account and print its credentials. The password is shown only now."""
    try:
        with unit_of_work(load_settings()) as session:
            credentials = service.create_partner(session, name=name, actor="cli")
    except EspError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        click.echo(json.dumps({"username": credentials.username, "password": credentials.password}))
        return
    click.echo(f"partner {name!r} created")
    click.echo(f"username: {credentials.username}")
    click.echo(f"password: {credentials.password}")
    click.echo("The password is shown only this once; it is stored as an Argon2id hash.")


@partners.command("purge-expired")
def purge_expired() -> None:
    """Delete open partner reports past their expiry, with their staged files."""
    try:
        ctx = build_context(load_settings(), Surface.partner)
    except (FileNotFoundError, ValueError) as exc:  # no keys, or unreadable ones
        raise click.ClickException(str(exc)) from exc
    try:
        purged = service.purge_expired(ctx)
    finally:
        ctx.engine.dispose()
    click.echo(f"{purged} expired partner report{'' if purged == 1 else 's'} purged")
