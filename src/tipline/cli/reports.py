"""`tipline reports list|show`: operator views for scripts. Never the codename (we do not
have it), never decrypted evidence, never the reporter's contact details."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import select

from tipline.cli.common import load_settings, unit_of_work
from tipline.errors import NotFound
from tipline.evidence import service as evidence
from tipline.messaging.models import ReportMessage
from tipline.reports import service as reports
from tipline.reports.models import Report


def summary(report: Report) -> dict[str, Any]:
    return {
        "reference": report.reference,
        "status": report.status.value,
        "reporter_sees": reports.coarse_status(report).value,
        "source": report.source.value,
        "created_at": report.created_at.isoformat(),
        "incident_types": report.incident_types,
        "immediate_danger": report.immediate_danger,
        "child_age_band": report.child_age_band.value,
        "child_country": report.child_country,
        "reporter_country": report.reporter_country,
        "anonymous": report.anonymous,
    }


@click.group()
def reports_group() -> None:
    """Look at reports."""


@reports_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
def list_reports(as_json: bool, limit: int) -> None:
    """The newest reports first."""
    with unit_of_work(load_settings()) as session:
        rows = session.execute(select(Report).order_by(Report.created_at.desc()).limit(limit)).scalars()
        items = [summary(r) for r in rows]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        click.echo(f"{item['reference']}  {item['created_at'][:19]}  {item['status']:<18} "
                   f"{','.join(item['incident_types'])}")


@reports_group.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True)
def show_report(reference: str, as_json: bool) -> None:
    """One report with its evidence digests."""
    with unit_of_work(load_settings()) as session:
        try:
            report = reports.get_by_reference(session, reference)
        except NotFound as exc:
            raise click.ClickException(f"no report {reference!r}") from exc
        item = summary(report)
        item.update({
            "frequency": report.frequency.value,
            "certainty": report.certainty.value,
            "happened_on": report.happened_on.isoformat() if report.happened_on else None,
            "happened_period": report.happened_period,
            "platform": report.platform,
            "urls": report.urls,
            "suspect": report.suspect,
            "child_region": report.child_region,
            "description": report.description,
            "sextortion": report.sextortion,
            "meeting_planned": report.meeting_planned.value,
            "messages": len(session.execute(
                select(ReportMessage.id).where(ReportMessage.report_id == report.id)).all()),
            "evidence": [
                {"id": str(e.id), "size": e.size, "media_type": e.media_type, "sha256": e.sha256,
                 "md5": e.md5, "received_at": e.received_at.isoformat()}
                for e in evidence.list_for_report(session, report.id)
            ],
        })
    if as_json:
        click.echo(json.dumps(item, indent=2))
        return
    for key, value in item.items():
        click.echo(f"{key}: {value}")

