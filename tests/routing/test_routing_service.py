from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tipline.audit.models import AuditEntry
from tipline.db import transaction
from tipline.errors import InvalidInput
from tipline.routing import service
from tipline.routing.models import DirectoryOrganisation, EmergencyNumbers


def _import(sessions: sessionmaker[Session], path: Any) -> service.ImportResult:
    with transaction(sessions) as session:
        return service.import_directory(session, path, actor="test")


def _ids(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(DirectoryOrganisation.id)))


def _audit_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def test_bundled_directory_imports_and_reimport_changes_nothing(
    routing_sessions: sessionmaker[Session],
) -> None:
    seen: list[tuple[int, int]] = []
    with transaction(routing_sessions) as session:
        first = service.import_directory(
            session, service.bundled_directory(), progress=lambda d, t: seen.append((d, t))
        )
    assert first.added == 198
    assert first.emergency_added >= 240
    assert seen[-1][0] == seen[-1][1]

    second = _import(routing_sessions, service.bundled_directory())
    assert (second.added, second.updated, second.removed) == (0, 0, 0)
    assert second.unchanged == 198
    assert (second.emergency_added, second.emergency_updated, second.emergency_removed) == (0, 0, 0)
    # Each run is recorded, with its counts.
    with routing_sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [r.action for r in rows] == ["directory.import", "directory.import"]
    assert json.loads(rows[1].details)["unchanged"] == 198


def test_reimport_updates_changed_adds_new_and_removes_missing(
    routing_sessions: sessionmaker[Session], routing_write: Any, routing_document: dict[str, Any]
) -> None:
    document = routing_document
    _import(routing_sessions, routing_write(document))

    document["organisations"][0]["phone"] = "0800 000 000"
    del document["organisations"][1]
    document["organisations"].append(
        {"id": "gb-three", "country": "GB", "name": "Example Helpline", "kind": "helpline",
         "confidence": "medium", "verify": True}
    )
    del document["emergency_numbers_by_region"]["numbers"]["BF"]
    result = _import(routing_sessions, routing_write(document))

    assert (result.added, result.updated, result.removed, result.unchanged) == (1, 1, 1, 2)
    assert result.emergency_removed == 1
    assert _ids(routing_sessions) == {"gb-one", "gb-three", "int-body", "us-cps-zz"}
    with routing_sessions() as session:
        assert session.get(DirectoryOrganisation, "gb-one").phone == "0800 000 000"  # type: ignore[union-attr]
        assert session.get(EmergencyNumbers, "BF") is None


def test_bad_file_is_rejected_naming_the_entry_and_field_and_changes_nothing(
    routing_sessions: sessionmaker[Session], routing_write: Any, routing_document: dict[str, Any]
) -> None:
    _import(routing_sessions, routing_write(routing_document))
    before_ids, before_audit = _ids(routing_sessions), _audit_count(routing_sessions)

    bad = json.loads(json.dumps(routing_document))
    bad["organisations"] = bad["organisations"][:2]  # would remove two entries if applied
    bad["organisations"][1]["kind"] = "pollice"
    bad["organisations"][0]["report_url"] = "javascript:alert(1)"
    with pytest.raises(InvalidInput) as caught:
        _import(routing_sessions, routing_write(bad))

    errors = caught.value.errors
    assert "organisations[1] (id 'gb-two').kind" in errors
    assert "police" in errors["organisations[1] (id 'gb-two').kind"]
    assert "organisations[0] (id 'gb-one').report_url" in errors
    assert "nothing was changed" in caught.value.message
    assert _ids(routing_sessions) == before_ids
    assert _audit_count(routing_sessions) == before_audit


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["organisations"][1].update(verify=False), "organisations[1] (id 'gb-two').verify"),
        (lambda d: d["organisations"][0].update(country="XX"), "organisations[0] (id 'gb-one').country"),
        (lambda d: d["organisations"][0].pop("kind"), "organisations[0] (id 'gb-one').kind"),
        (lambda d: d["organisations"][0].update(verfy=True), "organisations[0] (id 'gb-one').verfy"),
        (lambda d: d["organisations"][3].update(subdivisions=["CA-ON"]), "organisations[3] (id 'us-cps-zz').subdivisions"),
        (lambda d: d["organisations"].append(dict(d["organisations"][0])), "organisations[4] (id 'gb-one').id"),
        (lambda d: d["emergency_numbers_by_region"]["numbers"].update(FJ=["9-1-1"]), "emergency_numbers_by_region.numbers.FJ"),
        (lambda d: d["emergency_primary"].update(GB="nine"), "emergency_primary.GB"),
    ],
)
def test_each_kind_of_mistake_is_named(
    change: Any, where: str, routing_document: dict[str, Any]
) -> None:
    document = routing_document
    change(document)
    with pytest.raises(InvalidInput) as caught:
        service.parse_directory(json.dumps(document).encode(), "directory.json")
    assert where in caught.value.errors


def test_unreadable_json_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n "organisations": [\n  {"id": "x",}\n ]\n}')
    with pytest.raises(InvalidInput, match=r"broken\.json is not valid JSON.*line 3"):
        service.read_directory(path)


def test_emergency_primary_labelled_or_chosen_by_preference(
    routing_sessions: sessionmaker[Session],
) -> None:
    _import(routing_sessions, service.bundled_directory())
    with routing_sessions() as session:
        gb = service.emergency_numbers(session, "GB")
        us = service.emergency_numbers(session, "US")
        fj = service.emergency_numbers(session, "FJ")
        bf = service.emergency_numbers(session, "BF")
        assert service.emergency_numbers(session, "AQ") is None
    assert gb is not None and (gb.primary, gb.labelled, gb.others) == ("999", True, ("112",))
    assert us is not None and us.primary == "911"
    # Countries nobody labelled: 112, 911, 999, 000 in that order, else the first listed.
    assert fj is not None and (fj.primary, fj.labelled) == ("911", False)
    assert bf is not None and (bf.primary, bf.others) == ("17", ("18",))


def test_every_country_with_organisations_has_a_hand_chosen_number() -> None:
    data = service.read_directory(service.bundled_directory())
    labelled = {e.country for e in data.emergency if e.labelled}
    countries = {o.country for o in data.organisations if o.country}
    assert countries <= labelled
