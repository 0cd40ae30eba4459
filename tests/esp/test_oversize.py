"""Bodies and files over the configured limits: the documented code, a description, nothing kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.esp.conftest import GOLDEN
from tests.esp.test_api import XML, code_of, submit, upload
from tests.helpers import png_bytes
from tipline.app import create_app
from tipline.context import AppContext
from tipline.esp import api
from tipline.esp.models import EspFile, EspReport
from tipline.settings import Settings

MAX_FILE_BYTES = 1024


def _files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


@pytest.fixture
def small_client(settings: Settings) -> Iterator[TestClient]:
    limited = settings.model_copy(update={"esp_max_file_bytes": MAX_FILE_BYTES})
    with TestClient(create_app(limited, "partner"), base_url="http://testserver") as client:
        yield client


def test_xml_body_over_the_limit_is_4000_and_nothing_is_stored(
        esp_client: TestClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    document = (GOLDEN / "client_submit_minimal.xml").read_bytes()
    body = document + b" " * (api.MAX_XML_BYTES - len(document) + 1)  # still well-formed XML
    response = esp_client.post("/ispws/submit", content=body, headers={**auth, **XML})
    assert response.status_code == 200
    assert code_of(response.text) == 4000
    assert (f"<responseDescription>Invalid request: the document is larger than {api.MAX_XML_BYTES} bytes."
            "</responseDescription>") in response.text
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(EspReport)) == 0
    # One byte less is accepted: the limit is where it says.
    accepted = esp_client.post("/ispws/submit", content=body[:-1], headers={**auth, **XML})
    assert code_of(accepted.text) == 0, accepted.text


def test_upload_over_max_file_bytes_is_1111_and_no_blob_is_left(
        small_client: TestClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    ctx: AppContext = small_client.app.state.ctx  # type: ignore[attr-defined]
    report_id = submit(small_client, auth)
    big = png_bytes(seed=3, size=(600, 400), noise=True)
    assert len(big) > MAX_FILE_BYTES
    before = _files_under(ctx.settings.vault_dir)
    text = upload(small_client, auth, report_id, big)
    assert code_of(text) == 1111, text
    assert "<responseDescription>File upload failed: " in text and "larger" in text, text
    assert list(ctx.blobs.all_names()) == []
    assert _files_under(ctx.settings.vault_dir) == before
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(EspFile)) == 0
    # The report is still open and takes a file within the limit.
    small = png_bytes(seed=4, size=(16, 16))
    assert len(small) <= MAX_FILE_BYTES
    assert code_of(upload(small_client, auth, report_id, small)) == 0
