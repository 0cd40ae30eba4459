"""The hash-chained audit log: every write recorded; any edit, insertion or removal found."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import delete, select, update

from tests.conftest import environment_for
from tests.helpers import report_json
from tipline.audit import service as audit
from tipline.audit.models import AuditEntry, AuditHead
from tipline.cli.main import cli
from tipline.db import transaction


def file_reports(client, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        assert client.post("/api/v1/reports", json=report_json(description=f"report {i}")).status_code == 201


def verify(settings):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["audit", "verify"], env=environment_for(settings))


def test_every_report_is_audited_and_the_chain_verifies(client, ctx, settings) -> None:  # type: ignore[no-untyped-def]
    file_reports(client, 3)
    with ctx.sessions() as session:
        actions = session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars().all()
    assert actions == ["report.create"] * 3
    result = verify(settings)
    assert result.exit_code == 0
    assert "audit log intact: 3 rows" in result.output


def test_editing_a_row_is_detected(client, ctx, settings) -> None:  # type: ignore[no-untyped-def]
    file_reports(client, 3)
    with transaction(ctx.sessions) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="someone-else"))
    result = verify(settings)
    assert result.exit_code == 1
    assert "row 2: row content does not match its hash" in result.output


def test_deleting_a_middle_row_is_detected(client, ctx, settings) -> None:  # type: ignore[no-untyped-def]
    file_reports(client, 3)
    with transaction(ctx.sessions) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    result = verify(settings)
    assert result.exit_code == 1
    assert "row 3" in result.output


def test_deleting_the_last_row_is_detected(client, ctx, settings) -> None:  # type: ignore[no-untyped-def]
    file_reports(client, 2)
    with transaction(ctx.sessions) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    result = verify(settings)
    assert result.exit_code == 1
    assert "rows removed from the end" in result.output


def test_inserting_a_forged_row_is_detected(client, ctx, settings) -> None:  # type: ignore[no-untyped-def]
    file_reports(client, 2)
    with transaction(ctx.sessions) as session:
        first = session.execute(select(AuditEntry).where(AuditEntry.seq == 1)).scalar_one()
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(seq=3))
        session.add(AuditEntry(seq=2, at=first.at, actor="x", action="report.create",
                               object_type="report", object_id="forged", details="{}",
                               prev_hash=first.row_hash, row_hash="0" * 64))
        session.execute(update(AuditHead).values(seq=3))
    result = verify(settings)
    assert result.exit_code == 1
    assert "row 2: row content does not match its hash" in result.output


def test_a_failed_transaction_leaves_no_audit_row(ctx) -> None:  # type: ignore[no-untyped-def]
    try:
        with transaction(ctx.sessions) as session:
            audit.record(session, actor="t", action="x", object_type="y", object_id="z")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with ctx.sessions() as session:
        assert audit.count(session) == 0
        assert list(audit.verify(session)) == []
