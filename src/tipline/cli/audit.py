"""`tipline audit verify`: prove the audit chain is whole."""

from __future__ import annotations

import click

from tipline.audit import service as audit_service
from tipline.cli.common import load_settings, unit_of_work


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command()
def verify() -> None:
    """Exit status 1 if any row was altered, inserted or removed."""
    with unit_of_work(load_settings()) as session:
        total = audit_service.count(session)
        problems = list(audit_service.verify(session))
    if problems:
        for problem in problems:
            click.echo(f"row {problem.seq}: {problem.problem}")
        click.echo(f"audit log FAILED verification ({len(problems)} problems in {total} rows)")
        raise SystemExit(1)
    click.echo(f"audit log intact: {total} rows")
