"""`tipline db upgrade|check`."""

from __future__ import annotations

import click

from tipline.cli.common import load_settings


@click.group()
def db() -> None:
    """Database migrations."""


@db.command()
def upgrade() -> None:
    """Apply all migrations."""
    from tipline import migrations

    migrations.upgrade(load_settings())
    click.echo("database is up to date")


@db.command()
def check() -> None:
    """Fail if the models and the migrations disagree, or migrations are pending."""
    from alembic.util.exc import CommandError

    from tipline import migrations

    try:
        migrations.check(load_settings())
    except CommandError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("models and migrations agree")
