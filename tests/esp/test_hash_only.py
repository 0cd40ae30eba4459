"""Hash-only leads through the JSON partner API: hashes instead of files."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.esp.conftest import basic, make_partner
from tests.esp.test_json_api import BASE, minimal, problem_of, submit
from tipline.app import create_app
from tipline.esp.hashes import MAX_PER_REQUEST
from tipline.matching.models import HashKind, SubmittedHash
from tipline.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    # No hashing worker: these tests look at what is stored before anything is matched.
    app = create_app(settings.model_copy(update={"hash_workers": 0}), "partner")
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def opened(client: TestClient, auth: dict[str, str]) -> int:
    response = submit(client, auth, minimal())
    assert response.status_code == 201, response.text
    report_id: int = response.json()["reportId"]
    return report_id


def send(client: TestClient, auth: dict[str, str], report_id: int, body: Any) -> Any:
    return client.post(f"{BASE}/reports/{report_id}/hashes", json=body, headers=auth)


def stored(sessions: sessionmaker[Session]) -> list[SubmittedHash]:
    with sessions() as session:
        return list(session.execute(select(SubmittedHash).order_by(SubmittedHash.kind)).scalars())


MD5 = "0123456789ABCDEF0123456789abcdef"
PDQ = "f" * 32 + "0" * 32


def test_hashes_are_kept_on_the_report_and_filed_with_it(
        client: TestClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    report_id = opened(client, auth)
    response = send(client, auth, report_id, {"hashes": [
        {"type": "MD5", "value": MD5, "label": "IMG_0001.jpg"},
        {"type": "pdq", "value": PDQ, "quality": 90},
        {"type": "VPDQ", "frames": [{"frame": 1, "quality": 80, "pdq": PDQ},
                                    {"frame": 0, "quality": 100, "pdq": "a" * 64}]},
    ]})
    assert response.status_code == 201, response.text
    assert response.json() == {"reportId": report_id, "added": 3, "held": 3}
    rows = stored(sessions)
    assert [(r.kind, r.report_id) for r in rows] == [(HashKind.md5, None), (HashKind.pdq, None),
                                                     (HashKind.vpdq, None)]
    assert rows[0].value == MD5.lower() and rows[0].label == "IMG_0001.jpg"
    assert rows[1].quality == 90
    # vPDQ frames are kept in frame order, keyed by the digest of that canonical text.
    assert rows[2].frames == f"0,100,{'a' * 64}\n1,80,{PDQ}"

    finished = client.post(f"{BASE}/reports/{report_id}/finish", headers=auth)
    assert finished.status_code == 200, finished.text
    rows = stored(sessions)
    assert {r.report_id for r in rows} != {None} and len({r.report_id for r in rows}) == 1
    assert all(r.matched_at is None for r in rows)  # the worker's queue


@pytest.mark.parametrize(("body", "names"), [
    ({"hashes": []}, "non-empty list"),
    ({"hashes": [{"type": "CRC32", "value": "00"}]}, "hashes[0].type must be one of"),
    ({"hashes": [{"type": "MD5", "value": "abc"}]}, "hashes[0].value"),
    ({"hashes": [{"type": "SHA1", "value": "z" * 40}]}, "not hexadecimal"),
    ({"hashes": [{"type": "MD5", "value": MD5, "quality": 50}]}, "hashes[0].quality"),
    ({"hashes": [{"type": "PDQ", "value": PDQ, "quality": 101}]}, "hashes[0].quality"),
    ({"hashes": [{"type": "MD5", "value": MD5}, {"type": "MD5", "value": MD5, "size": 1}]},
     "hashes[1] has unknown key(s): size"),
    ({"hashes": [{"type": "VPDQ", "value": PDQ}]}, "given by its frames"),
    ({"hashes": [{"type": "VPDQ", "frames": [{"frame": -1, "quality": 1, "pdq": PDQ}]}]},
     "hashes[0].frames[0].frame"),
    ({"hashes": [{"type": "MD5", "value": MD5}] * (MAX_PER_REQUEST + 1)}, f"at most {MAX_PER_REQUEST}"),
    ({"files": []}, 'one key, "hashes"'),
])
def test_bad_hashes_are_refused_and_nothing_is_kept(
        client: TestClient, auth: dict[str, str], sessions: sessionmaker[Session],
        body: dict[str, Any], names: str) -> None:
    report_id = opened(client, auth)
    # One good hash beside the bad one: the whole request is refused.
    problem = problem_of(send(client, auth, report_id, body), 400, 4100)
    assert names in problem["detail"]
    assert stored(sessions) == []


def test_not_json_and_wrong_reports(client: TestClient, auth: dict[str, str],
                                    sessions: sessionmaker[Session]) -> None:
    report_id = opened(client, auth)
    response = client.post(f"{BASE}/reports/{report_id}/hashes", content=b"{not json",
                           headers={**auth, "Content-Type": "application/json"})
    assert "not JSON" in problem_of(response, 400, 4110)["detail"]
    good = {"hashes": [{"type": "MD5", "value": MD5}]}
    problem_of(send(client, auth, 987654321, good), 404, 5001)
    other = make_partner(sessions, "Another Company")
    problem_of(send(client, basic(other.username, other.password), report_id, good), 404, 5001)
    assert client.post(f"{BASE}/reports/{report_id}/finish", headers=auth).status_code == 200
    problem_of(send(client, auth, report_id, good), 409, 5102)
    assert stored(sessions) == []


def test_retract_removes_the_hashes(client: TestClient, auth: dict[str, str],
                                    sessions: sessionmaker[Session]) -> None:
    report_id = opened(client, auth)
    body = {"hashes": [{"type": "SHA256", "value": secrets.token_hex(32)}]}
    assert send(client, auth, report_id, body).status_code == 201
    assert client.post(f"{BASE}/reports/{report_id}/retract", headers=auth).status_code == 200
    assert stored(sessions) == []


def test_hash_only_leads_are_matched_by_the_worker(
        client: TestClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    """Through the API to a match: an MD5 and a near PDQ (distance 3) in a bank are matched
    once the report is filed; an unknown hash is not; the report's priority rises."""
    from tests.matching.bank_fixtures import add_entries, make_bank
    from tipline.matching.models import HashMatch
    from tipline.matching.worker import HashWorker
    from tipline.reports.models import Report

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    bank_id = make_bank(ctx, "Survivor-reported images", default_category="B2")
    banked_pdq = "0f" * 32
    add_entries(ctx, bank_id, [(HashKind.md5, MD5.lower(), "A2"), (HashKind.pdq, banked_pdq, None)])
    near = "0f" * 31 + "08"  # three bits away from the banked PDQ
    report_id = opened(client, auth)
    assert send(client, auth, report_id, {"hashes": [
        {"type": "MD5", "value": MD5}, {"type": "PDQ", "value": near, "quality": 100},
        {"type": "SHA1", "value": "ab" * 20}]}).status_code == 201
    assert client.post(f"{BASE}/reports/{report_id}/finish", headers=auth).status_code == 200

    worker = HashWorker(ctx, workers=1)
    try:
        worker.run_once()
    finally:
        worker.close()
    with sessions() as session:
        rows = {row.id: row for row in stored(sessions)}
        assert all(row.matched_at is not None for row in rows.values())
        matches = list(session.execute(select(HashMatch)).scalars())
        found = sorted((rows[m.submitted_hash_id].kind.value, m.category, m.distance)  # type: ignore[index]
                       for m in matches)
        assert found == [("md5", "A2", 0), ("pdq", "B2", 3)]
        report = session.get_one(Report, matches[0].report_id)
        assert any(reason.startswith("known material: ") for reason in report.priority_reasons)
