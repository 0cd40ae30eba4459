"""Correlation in the database: indexing, related reports, merging and duplicates."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.conftest import BACKEND
from tests.helpers import report_json
from tipline.audit.models import AuditEntry
from tipline.context import AppContext
from tipline.db import transaction
from tipline.errors import Conflict, InvalidInput
from tipline.reports import service as reports
from tipline.reports.enums import Source
from tipline.reports.models import Report
from tipline.reports.schemas import ReportCreate
from tipline.reports.states import ReportStatus
from tipline.triage import correlation
from tipline.triage.identifiers import IdentifierKind
from tipline.triage.models import ReportIdentifier


def unrelated(**overrides: Any) -> dict[str, Any]:
    """A report with no identifier of its own; each test adds the ones it is about."""
    fields = report_json(urls=[], suspect={"details": "Nothing to go on."},
                         description="A stranger keeps writing to a child.")
    fields.update(overrides)
    return fields


def new_report(session: Session, ctx: AppContext, **overrides: Any) -> Report:
    data = ReportCreate.model_validate(unrelated(**overrides))
    report = reports.create_report(session, ctx.keys, data, source=Source.staff_phone,
                                   codename_lookup=None, actor="test")
    correlation.index_report(session, report)
    return report


def references(related: list[correlation.Related]) -> list[str]:
    return [r.reference for r in related]


def test_index_is_replaced_not_added_to(ctx: AppContext) -> None:
    with transaction(ctx.sessions) as session:
        report = new_report(session, ctx, suspect={"emails": ["a@example.org", "b@example.org"]})
        assert correlation.index_report(session, report) == 2
        report.suspect = {"emails": ["C@example.org"]}
        assert correlation.index_report(session, report) == 1
        rows = session.execute(select(ReportIdentifier.kind, ReportIdentifier.value, ReportIdentifier.raw)
                               .where(ReportIdentifier.report_id == report.id)).all()
    assert [(kind.value, value, raw) for kind, value, raw in rows] == [("email", "c@example.org", "C@example.org")]


def test_related_both_ways_ordered_by_shared_count(ctx: AppContext) -> None:
    with transaction(ctx.sessions) as session:
        a = new_report(session, ctx, platform="Instagram", suspect={
            "emails": ["fox@example.org"], "usernames": ["shadow.fox"], "phones": ["+44 20 7946 0958"]})
        one = new_report(session, ctx, description="He mails from Fox@Example.org every night.")
        two = new_report(session, ctx, platform="insta", urls=["https://www.instagram.com/Shadow.Fox/"],
                         suspect={"phones": ["0044 20 7946 0958"]})
        other_platform = new_report(session, ctx, platform="TikTok", suspect={"usernames": ["shadow.fox"]})
        new_report(session, ctx, suspect={"emails": ["someone.else@example.org"]})

        related = correlation.related_reports(session, a.id)
        assert references(related) == [two.reference, one.reference]
        assert related[0].shared == ["phone: +442079460958", "username: shadow.fox (instagram)"]
        assert related[1].shared == ["email: fox@example.org"]
        assert references(correlation.related_reports(session, one.id)) == [a.reference]
        assert correlation.related_reports(session, other_platform.id) == []
        assert correlation.count_related(session, a.id) == 2
        assert correlation.count_related(session, other_platform.id) == 0


def test_merge_brings_the_sources_identifiers_along(ctx: AppContext) -> None:
    with transaction(ctx.sessions) as session:
        target = new_report(session, ctx, suspect={"emails": ["fox@example.org"]})
        source = new_report(session, ctx, suspect={"emails": ["fox@example.org", "den@example.org"]})
        linked_by_source = new_report(session, ctx, suspect={"emails": ["den@example.org"]})

        correlation.merge_reports(session, target=target, sources=[source], actor="staff:test")

        assert source.status == ReportStatus.duplicate
        assert source.merged_into_id == target.id
        related = correlation.related_reports(session, target.id)
        # The merged report is part of the case, not a related report; what it shares is.
        assert references(related) == [linked_by_source.reference]
        assert related[0].shared == ["email: den@example.org"]
        audit_rows = session.execute(select(AuditEntry).where(AuditEntry.object_id == str(source.id))).scalars().all()
        actions = [row.action for row in audit_rows]
        assert "report.status" in actions and "report.merge" in actions


def test_merge_moves_earlier_duplicates_to_the_new_target(ctx: AppContext) -> None:
    with transaction(ctx.sessions) as session:
        first = new_report(session, ctx)
        second = new_report(session, ctx)
        earlier = new_report(session, ctx)
        correlation.mark_duplicate(session, earlier, second, "staff:test")
        correlation.merge_reports(session, target=first, sources=[second], actor="staff:test")
        assert earlier.merged_into_id == first.id
        assert second.merged_into_id == first.id
        actions = session.execute(select(AuditEntry.action).where(AuditEntry.object_id == str(earlier.id))).scalars().all()
        assert "report.duplicate" in actions


def test_merge_refusals_change_nothing(ctx: AppContext) -> None:
    with transaction(ctx.sessions) as session:
        target = new_report(session, ctx)
        fresh = new_report(session, ctx)
        referred = new_report(session, ctx)
        reports.change_status(session, referred, ReportStatus.in_review, actor="test")
        reports.change_status(session, referred, ReportStatus.referred, actor="test")

        with pytest.raises(Conflict) as refused:
            correlation.merge_reports(session, target=target, sources=[fresh, referred], actor="staff:test")
        assert referred.reference in refused.value.message
        assert "is referred and cannot become a duplicate" in refused.value.message
        assert "received or in_review" in refused.value.message
        assert fresh.status == ReportStatus.received and fresh.merged_into_id is None

        with pytest.raises(Conflict, match="itself"):
            correlation.mark_duplicate(session, target, target, "staff:test")
        with pytest.raises(InvalidInput):
            correlation.merge_reports(session, target=target, sources=[], actor="staff:test")

        correlation.mark_duplicate(session, fresh, target, "staff:test")
        with pytest.raises(Conflict, match="already merged"):
            correlation.mark_duplicate(session, fresh, target, "staff:test")
        with pytest.raises(Conflict, match="is itself a duplicate"):
            correlation.mark_duplicate(session, new_report(session, ctx), fresh, "staff:test")


@pytest.mark.skipif(BACKEND != "sqlite", reason="reads SQLite's query plan")
def test_related_query_uses_the_indexes(ctx: AppContext) -> None:
    """The related-reports join must search the (kind, value) index, never scan the table."""
    query = correlation._shared_rows([uuid.uuid4()])
    with ctx.sessions() as session:
        compiled = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        plan = " | ".join(str(row[-1]) for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_report_identifier_kind_value" in plan, plan
    assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", "").replace("USING", ""), plan


def test_counting_new_reports_looks_identifiers_up_in_the_index(ctx: AppContext) -> None:
    """Each batch of partner reports asks which reports hold its identifiers: that must be a
    lookup of (kind, value) in the index on either database, never a scan of a whole kind."""
    values = {f"values_{kind.value}": [] for kind in IdentifierKind}
    values["values_username"] = ["pixelplay:quiet_owl", "pixelplay:loud_owl"]
    query = correlation._HOLDERS.params(values)
    with ctx.sessions() as session:
        sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
        if BACKEND == "sqlite":
            plan = " | ".join(str(row[-1]) for row in session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
            assert "ix_report_identifier_kind_value (kind=? AND value=?)" in plan, plan
        else:
            # A table of some size, as the planner's statistics see it.
            report = new_report(session, ctx)
            session.add_all(ReportIdentifier(report_id=report.id, kind="username", value=f"pixelplay:owl_{i}",
                                             raw=f"owl_{i}", created_at=report.created_at) for i in range(2000))
            session.flush()
            session.execute(text("ANALYZE report_identifier"))
            lines = [row[0] for row in session.execute(text(f"EXPLAIN {sql}"))]
            assert any("ix_report_identifier_kind_value" in line for line in lines), lines
            condition = next(line for line in lines if "Index Cond" in line)
            assert "kind" in condition and "value" in condition, lines
