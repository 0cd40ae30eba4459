"""The `tipline` command."""

from __future__ import annotations

import click

from tipline.cli import agencies as agencies_cli
from tipline.cli import audit as audit_cli
from tipline.cli import banks as banks_cli
from tipline.cli import db as db_cli
from tipline.cli import directory as directory_cli
from tipline.cli import package as package_cli
from tipline.cli import partners as partners_cli
from tipline.cli import reports as reports_cli
from tipline.cli import server as server_cli
from tipline.cli import users as users_cli
from tipline.cli import vault as vault_cli


@click.group()
@click.version_option(package_name="tipline")
def cli() -> None:
    """Tipline: reports of online child sexual exploitation and abuse."""


cli.add_command(server_cli.init)
cli.add_command(server_cli.serve)
cli.add_command(db_cli.db)
cli.add_command(reports_cli.reports_group, name="reports")
cli.add_command(vault_cli.vault)
cli.add_command(audit_cli.audit)
cli.add_command(directory_cli.directory)
cli.add_command(users_cli.users)
cli.add_command(agencies_cli.agencies)
cli.add_command(package_cli.package)
cli.add_command(partners_cli.partners)
cli.add_command(banks_cli.banks)
