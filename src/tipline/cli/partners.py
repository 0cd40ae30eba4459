"""`tipline partners create NAME`: accounts for the partner (ESP) API."""

from __future__ import annotations

import json

import click

from tipline.cli.common import load_settings, unit_of_work
from tipline.esp import service
from tipline.esp.xml import EspError


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
