"""The bank service: creating, listing, switching and tuning banks, all audited."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tipline import clock
from tipline.audit.models import AuditEntry
from tipline.db import transaction
from tipline.errors import Conflict, InvalidInput, NotFound
from tipline.matching import banks, imports
from tipline.matching.models import CategoryScheme, HashKind, JobState


def audit_actions(sessions: sessionmaker[Session]) -> list[str]:
    with transaction(sessions) as session:
        return list(session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())


@pytest.mark.parametrize(("scheme", "raw", "stored"), [
    (CategoryScheme.industry, " a1 ", "A1"),
    (CategoryScheme.industry, "B2", "B2"),
    (CategoryScheme.interpol, "Baseline", "baseline"),
    (CategoryScheme.interpol, "NATIONAL", "national"),
    (CategoryScheme.vics, "0", "0"),
    (CategoryScheme.vics, "4", "4"),
    (CategoryScheme.iwf, "c", "C"),
    (CategoryScheme.custom, "  Series Heron, verified ", "Series Heron, verified"),
    (CategoryScheme.industry, "", None),
    (CategoryScheme.vics, None, None),
    (CategoryScheme.custom, "   ", None),
])
def test_normalise_category_accepts_each_schemes_values(scheme: CategoryScheme, raw: str | None,
                                                        stored: str | None) -> None:
    assert banks.normalise_category(scheme, raw) == stored


@pytest.mark.parametrize(("scheme", "raw", "says"), [
    (CategoryScheme.industry, "A3", "use one of A1, A2, B1, B2"),
    (CategoryScheme.industry, "baseline", "not a category of the industry scheme"),
    (CategoryScheme.interpol, "worst", "use one of baseline, national"),
    (CategoryScheme.vics, "5", "use one of 0, 1, 2, 3, 4"),
    (CategoryScheme.vics, "CAM", "use one of 0, 1, 2, 3, 4"),
    (CategoryScheme.iwf, "D", "use one of A, B, C"),
    (CategoryScheme.custom, "x" * 41, "at most 40 characters"),
])
def test_normalise_category_explains_a_wrong_one(scheme: CategoryScheme, raw: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        banks.normalise_category(scheme, raw)
    assert says in caught.value.message
    assert caught.value.field == "category"


def test_create_bank_stores_it_and_audits(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        bank = banks.create_bank(session, name=" Hotline list ", category_scheme=CategoryScheme.iwf,
                                 source="Example hotline", description="Invented for tests",
                                 default_category="b", pdq_threshold=20, actor="admin@example.org")
        bank_id = bank.id
    with transaction(sessions) as session:
        stored = banks.get_bank(session, bank_id)
        assert (stored.name, stored.source, stored.default_category, stored.pdq_threshold) == \
            ("Hotline list", "Example hotline", "B", 20)
        assert stored.enabled is True
        assert stored.created_at == stored.updated_at
        assert banks.get_bank_by_name(session, "Hotline list").id == bank_id
    assert audit_actions(sessions) == ["bank.create"]


def test_create_bank_refuses_bad_input(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        banks.create_bank(session, name="taken", category_scheme=CategoryScheme.custom, actor="a")
    with transaction(sessions) as session:
        with pytest.raises(Conflict, match="already exists"):
            banks.create_bank(session, name="taken", category_scheme=CategoryScheme.custom, actor="a")
        for threshold in (-1, 33):
            with pytest.raises(InvalidInput, match="0 to 32"):
                banks.create_bank(session, name="new", category_scheme=CategoryScheme.custom,
                                  pdq_threshold=threshold, actor="a")
        with pytest.raises(InvalidInput, match="not a category of the vics scheme"):
            banks.create_bank(session, name="new", category_scheme=CategoryScheme.vics,
                              default_category="A1", actor="a")
        with pytest.raises(InvalidInput, match="1 to 120 characters"):
            banks.create_bank(session, name="  ", category_scheme=CategoryScheme.vics, actor="a")
    with transaction(sessions) as session:
        banks.create_bank(session, name="edge", category_scheme=CategoryScheme.custom,
                          pdq_threshold=32, actor="a")


def test_missing_banks_and_imports_are_not_found(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        with pytest.raises(NotFound):
            banks.get_bank(session, uuid.uuid4())
        with pytest.raises(NotFound, match="no-such-bank"):
            banks.get_bank_by_name(session, "no-such-bank")
        with pytest.raises(NotFound):
            banks.get_import(session, uuid.uuid4())


def test_enable_disable_and_threshold_are_audited(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        bank = banks.create_bank(session, name="b", category_scheme=CategoryScheme.industry, actor="a")
        created = bank.updated_at
    clock.advance(60)
    with transaction(sessions) as session:
        bank = banks.get_bank_by_name(session, "b")
        banks.set_enabled(session, bank, False, actor="a")
        banks.set_threshold(session, bank, 12, actor="a")
    with transaction(sessions) as session:
        bank = banks.get_bank_by_name(session, "b")
        assert bank.enabled is False
        assert bank.pdq_threshold == 12
        assert (bank.updated_at - created).total_seconds() >= 60
        with pytest.raises(InvalidInput):
            banks.set_threshold(session, bank, 33, actor="a")
        banks.set_enabled(session, bank, True, actor="a")
    with transaction(sessions) as session:
        assert banks.get_bank_by_name(session, "b").enabled is True
        details = session.execute(select(AuditEntry.details).where(
            AuditEntry.action == "bank.threshold")).scalar_one()
        assert '"from":31' in details and '"to":12' in details
    assert audit_actions(sessions) == ["bank.create", "bank.disable", "bank.threshold", "bank.enable"]


def test_list_banks_counts_entries_and_shows_the_last_import(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with transaction(sessions) as session:
        first = banks.create_bank(session, name="zeta", category_scheme=CategoryScheme.custom, actor="a").id
        banks.create_bank(session, name="alpha", category_scheme=CategoryScheme.custom, actor="a")
    older = tmp_path / "older.txt"
    older.write_text("".join(f"{i:032x}\n" for i in range(3)))
    newer = tmp_path / "newer.csv"
    newer.write_text("md5,sha1\n" + "".join(f"{i + 10:032x},{i:040x}\n" for i in range(4)))
    imports.run_import(sessions, bank_id=first, path=older, actor="a")
    clock.advance(5)
    imports.run_import(sessions, bank_id=first, path=newer, actor="a")
    with transaction(sessions) as session:
        summaries = banks.list_banks(session)
        assert [s.bank.name for s in summaries] == ["alpha", "zeta"]
        alpha, zeta = summaries
        assert alpha.entries == {} and alpha.total == 0 and alpha.last_import is None
        assert zeta.entries == {HashKind.md5: 7, HashKind.sha1: 4}
        assert zeta.total == 11
        assert zeta.last_import is not None and zeta.last_import.filename == "newer.csv"
        history = banks.list_imports(session, banks.get_bank(session, first))
        assert [i.filename for i in history] == ["newer.csv", "older.txt"]
        assert all(i.state is JobState.done for i in history)
        assert banks.get_import(session, history[1].id).added == 3
