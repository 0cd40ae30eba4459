from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tipline.db import transaction
from tipline.routing import service
from tipline.routing.directory import DirectoryCache


def _loaded(sessions: sessionmaker[Session], path: Any) -> DirectoryCache:
    with transaction(sessions) as session:
        service.import_directory(session, path)
    cache = DirectoryCache(sessions)
    cache.reload()
    return cache


def test_empty_tables_do_not_fail_and_the_bundled_numbers_stand_in(
    routing_sessions: sessionmaker[Session],
) -> None:
    cache = DirectoryCache(routing_sessions)
    cache.reload()
    gb = cache.emergency("GB")
    assert gb is not None and (gb.number, gb.others) == ("999", ("112",))


def test_emergency_numbers_from_the_database(
    routing_sessions: sessionmaker[Session], routing_write: Any, routing_document: dict[str, Any]
) -> None:
    cache = _loaded(routing_sessions, routing_write(routing_document))
    gb = cache.emergency("gb")
    assert gb is not None
    assert (gb.country, gb.country_name, gb.number, gb.others) == ("GB", "United Kingdom", "999", ("112",))
    fj = cache.emergency("FJ")
    assert fj is not None and (fj.number, fj.others) == ("911", ("917",))
    assert cache.emergency("AQ") is None


def test_long_generated_number_lists_are_cut_short(routing_sessions: sessionmaker[Session]) -> None:
    cache = _loaded(routing_sessions, service.bundled_directory())
    gabon = cache.emergency("GA")
    assert gabon is not None and len(gabon.others) == 5


def test_country_choices_cover_the_world_localised_and_sorted(
    routing_sessions: sessionmaker[Session],
) -> None:
    cache = DirectoryCache(routing_sessions)
    english = cache.country_choices("en")
    codes = [code for code, _ in english]
    assert {"GB", "US", "FJ", "XK"} <= set(codes)
    assert not {"EU", "UN", "ZZ"} & set(codes)
    assert codes.index("AF") < codes.index("AX") < codes.index("AL")  # Åland sorts among the A's
    assert ("DE", "Deutschland") in cache.country_choices("de")


def test_organisations_by_country_state_and_scope(
    routing_sessions: sessionmaker[Session], routing_write: Any, routing_document: dict[str, Any]
) -> None:
    cache = _loaded(routing_sessions, routing_write(routing_document))
    # Hotlines first; within a kind, confirmed entries before unconfirmed ones.
    assert [o.id for o in cache.organisations("GB")] == ["gb-one", "gb-two"]
    assert cache.is_listed("GB") and cache.is_listed("US") and not cache.is_listed("FJ")
    assert [o.id for o in cache.international()] == ["int-body"]
    assert cache.subdivisions("US") == [("US-CA", "California")]
    assert [o.id for o in cache.child_welfare("US-CA")] == ["us-cps-zz"]
    assert cache.child_welfare("US-TX") == ()
    # State lines are not mixed into the country-wide list.
    assert cache.organisations("US") == ()


def test_every_us_state_has_a_child_welfare_line(routing_sessions: sessionmaker[Session]) -> None:
    cache = _loaded(routing_sessions, service.bundled_directory())
    states = cache.subdivisions("US")
    assert len(states) == 51
    assert all(cache.child_welfare(code) for code, _ in states)


def test_an_import_made_while_running_is_picked_up(
    routing_sessions: sessionmaker[Session], routing_write: Any, routing_document: dict[str, Any]
) -> None:
    cache = _loaded(routing_sessions, routing_write(routing_document))
    assert cache.emergency("BF") is not None
    del routing_document["emergency_numbers_by_region"]["numbers"]["BF"]
    with transaction(routing_sessions) as session:
        service.import_directory(session, routing_write(routing_document))
    cache.refresh_seconds = 0
    assert cache.emergency("BF") is None
