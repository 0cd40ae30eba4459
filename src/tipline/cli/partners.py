"""`tipline partners create NAME | list | disable USERNAME | enable USERNAME |
reset-password USERNAME`: accounts for the partner (ESP) API.
`tipline partners purge-expired`: delete open partner reports past their expiry (a
partner-surface server also does this itself, every TIPLINE_ESP_PURGE_INTERVAL_SECONDS)."""

from __future__ import annotations

import json
from typing import Any

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
    if not as_json:
        click.echo(f"partner {name!r} created")
    _print_credentials(credentials, as_json=as_json,
                       note="The password is shown only this once; it is stored as an Argon2id hash.")


def _print_credentials(credentials: service.Credentials, *, as_json: bool, note: str) -> None:
    if as_json:
        click.echo(json.dumps({"username": credentials.username, "password": credentials.password}))
        return
    click.echo(f"username: {credentials.username}")
    click.echo(f"password: {credentials.password}")
    click.echo(note)


@partners.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the accounts as JSON.")
def list_accounts(as_json: bool) -> None:
    """The partner accounts (never their passwords)."""
    with unit_of_work(load_settings()) as session:
        rows: list[dict[str, Any]] = [{"username": p.username, "name": p.name, "active": p.active,
                 "created_at": p.created_at.isoformat()} for p in service.list_partners(session)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no partner accounts; create one with `tipline partners create NAME`")
    for row in rows:
        state = "active" if row["active"] else "DISABLED"
        click.echo(f"{row['username']}  {state:8}  {row['created_at'][:10]}  {row['name']}")


CACHE_NOTE = "Running servers notice within 30 seconds (they keep verified credentials that long)."


def _set_active(username: str, *, active: bool) -> None:
    try:
        with unit_of_work(load_settings()) as session:
            service.set_active(session, username, active=active, actor="cli")
    except EspError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"partner {username} {'enabled' if active else 'disabled'}. {CACHE_NOTE}")


@partners.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Refuse this partner's credentials from now on (its reports stay)."""
    _set_active(username, active=False)


@partners.command("enable")
@click.argument("username")
def enable(username: str) -> None:
    """Accept a disabled partner's credentials again."""
    _set_active(username, active=True)


@partners.command("reset-password")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True, help="Print the new credentials as JSON.")
def reset_password(username: str, as_json: bool) -> None:
    """Give the partner a new password (printed once); the old one stops working."""
    try:
        with unit_of_work(load_settings()) as session:
            credentials = service.reset_password(session, username, actor="cli")
    except EspError as exc:
        raise click.ClickException(exc.message) from exc
    _print_credentials(credentials, as_json=as_json, note=f"The password is shown only this once. {CACHE_NOTE}")


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
