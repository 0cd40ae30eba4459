"""Reports opened and finished in one group-commit batch: numbered together and claimed
together, and each refusal still reaches its own caller with its precise reason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import BACKEND
from tests.esp.conftest import GOLDEN, make_partner
from tipline import clock
from tipline.batching import GroupCommitWriter
from tipline.context import AppContext
from tipline.db import new_id, transaction
from tipline.esp import schema, service
from tipline.esp.models import EspReport, EspReportState, Partner
from tipline.esp.xml import Code, EspError, read_document
from tipline.reports.models import Report

T = TypeVar("T")


def _document() -> dict[str, Any]:
    return read_document((GOLDEN / "client_submit_minimal.xml").read_bytes(), "report", schema.REPORT, "utf-8")


def _partner_id(sessions: sessionmaker[Session], username: str) -> Any:
    with transaction(sessions) as session:
        return session.execute(select(Partner.id).where(Partner.username == username)).scalar_one()


def _run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a scenario in an event loop of its own thread: earlier tests (the browser ones)
    may leave a loop running in this one, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(scenario())).result()


@pytest.fixture
def one_batch(esp_ctx: AppContext, sessions: sessionmaker[Session]) -> GroupCommitWriter:
    """A writer that waits long enough for every call of a test's gather to join one batch."""
    writer = GroupCommitWriter(sessions, refusals=(EspError,), linger_seconds=0.5)
    esp_ctx.esp_writer = writer
    return writer


def test_reports_opened_together_get_distinct_numbers_and_a_collision_is_redrawn(
        esp_ctx: AppContext, sessions: sessionmaker[Session], partner: service.Credentials,
        one_batch: GroupCommitWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    partner_id = _partner_id(sessions, partner.username)
    # The first two draws are the same number: the second report must get the next draw.
    draws = iter([5, 5, 7, 9])
    monkeypatch.setattr(service.secrets, "randbelow", lambda _n: next(draws))

    async def open_three() -> list[tuple[int, bool]]:
        return list(await asyncio.gather(*(service.open_report(esp_ctx, partner_id, _document())
                                           for _ in range(3))))

    opened = _run(open_three)
    assert one_batch.batches == 1
    low = service.REPORT_ID_RANGE[0]
    assert sorted(number for number, _ in opened) == [low + 5, low + 7, low + 9]
    assert all(created for _, created in opened)
    with transaction(sessions) as session:
        stored = session.execute(select(EspReport.report_id, EspReport.state)).all()
    assert sorted(stored) == sorted((number, EspReportState.open) for number, _ in opened)


def test_finishes_in_one_batch_are_filed_and_refused_one_by_one(
        esp_ctx: AppContext, sessions: sessionmaker[Session], partner: service.Credentials,
        one_batch: GroupCommitWriter) -> None:
    ours = _partner_id(sessions, partner.username)
    theirs = _partner_id(sessions, make_partner(sessions, "Other Chat Co").username)

    async def scenario() -> list[Any]:
        first, _ = await service.open_report(esp_ctx, ours, _document())
        second, _ = await service.open_report(esp_ctx, ours, _document())
        foreign, _ = await service.open_report(esp_ctx, theirs, _document())
        retracted, _ = await service.open_report(esp_ctx, ours, _document())
        await service.retract(esp_ctx, ours, retracted)
        batches = one_batch.batches
        results = await asyncio.gather(
            service.finish(esp_ctx, ours, first), service.finish(esp_ctx, ours, second),
            service.finish(esp_ctx, ours, second),  # a retry racing its first attempt
            service.finish(esp_ctx, ours, foreign), service.finish(esp_ctx, ours, 123_456_789),
            service.finish(esp_ctx, ours, retracted), return_exceptions=True)
        assert one_batch.batches == batches + 1
        return [first, second, foreign, retracted, *results]

    first, second, foreign, retracted, *results = _run(scenario)
    done_first, done_second, again, other, unknown, gone = results
    assert isinstance(done_first, service.Finished) and done_first.report_id == first
    assert isinstance(done_second, service.Finished) and done_second.report_id == second
    codes = [error.code if isinstance(error, EspError) else error for error in (again, other, unknown, gone)]
    assert codes == [Code.already_finished, Code.report_not_found, Code.report_not_found,
                     Code.already_retracted]
    with transaction(sessions) as session:
        assert session.execute(select(func.count()).select_from(Report)).scalar_one() == 2
        states = dict(session.execute(select(EspReport.report_id, EspReport.state)).all())
    assert states == {first: EspReportState.finished, second: EspReportState.finished,
                      foreign: EspReportState.open, retracted: EspReportState.retracted}


def test_finishing_a_batch_searches_the_report_number_index(
        esp_ctx: AppContext, sessions: sessionmaker[Session], partner: service.Credentials) -> None:
    """A batch's finish is one UPDATE by (number, partner) pairs: on either database a
    search of the unique report_id index, never a read of every open report."""
    partner_id = _partner_id(sessions, partner.username)
    now = clock.now()
    low = service.REPORT_ID_RANGE[0]
    with transaction(sessions) as session:
        session.execute(insert(EspReport), [
            {"id": new_id(), "report_id": low + n, "partner_id": partner_id, "state": EspReportState.open,
             "opened_at": now, "last_change_at": now, "document": {}} for n in range(2000)])
    captured: list[tuple[str, Any]] = []

    class Captured(Exception):
        pass

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.startswith("UPDATE"):  # not SQLite's BEGIN IMMEDIATE
            captured.append((statement, parameters))
            raise Captured

    with esp_ctx.engine.connect() as connection:
        if BACKEND == "postgresql":
            connection.exec_driver_sql("ANALYZE esp_report")
        event.listen(connection, "before_cursor_execute", capture)
        with pytest.raises(Captured):
            connection.execute(service._FINISH_MANY, {
                "b_numbers": [low + 1, low + 2], "b_pairs": [(low + 1, partner_id), (low + 2, partner_id)],
                "b_now": now, "b_opened_after": now, "b_changed_after": now})
        event.remove(connection, "before_cursor_execute", capture)
        statement, parameters = captured[0]
        if BACKEND == "sqlite":
            plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            assert [line for line in plan if line.startswith("SEARCH esp_report") and "(report_id=?)" in line], plan
        else:
            plan = [row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)]
            assert not [line for line in plan if "Seq Scan" in line], plan
            assert [line for line in plan if "Index Cond: (report_id" in line], plan
        connection.rollback()
