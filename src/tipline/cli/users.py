"""`tipline users create-admin`."""

from __future__ import annotations

import sys

import click

from tipline.accounts import service as accounts
from tipline.accounts.permissions import Role
from tipline.cli.common import load_settings, unit_of_work
from tipline.errors import TiplineError


@click.group()
def users() -> None:
    """Staff accounts."""


@users.command("create-admin")
@click.argument("email")
@click.option("--name", default="", help="Display name (default: the e-mail address).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin(email: str, name: str, password_stdin: bool) -> None:
    """Create an administrator. They set up two-step sign-in at their first sign-in."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password (at least 12 characters)", hide_input=True,
                                confirmation_prompt=True)
    try:
        with unit_of_work(load_settings()) as session:
            user = accounts.create_user(session, email=email, display_name=name, role=Role.admin,
                                        password=password, actor="cli")
            user_id = user.id
    except TiplineError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"administrator {email} created ({user_id}); sign in at /staff/login")
