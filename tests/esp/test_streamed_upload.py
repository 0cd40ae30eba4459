"""A large upload arriving in many small pieces: the parser takes the pieces in batches
(web.multipart.PARSE_BATCH_BYTES), and the vault must still hold exactly the bytes sent."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.esp.test_api import code_of, submit
from tests.helpers import png_bytes
from tipline.context import AppContext
from tipline.esp.models import EspFile
from tipline.web.multipart import PARSE_BATCH_BYTES

BOUNDARY = "invented-boundary-7f3a"
PIECE = 16 * 1024


def _pieces(report_id: int, data: bytes) -> Iterator[bytes]:
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="id"\r\n\r\n{report_id}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return (body[i:i + PIECE] for i in range(0, len(body), PIECE))


def test_a_file_sent_in_small_pieces_is_stored_byte_for_byte(
        esp_client: TestClient, esp_ctx: AppContext, auth: dict[str, str],
        sessions: sessionmaker[Session]) -> None:
    report_id = submit(esp_client, auth)
    # A PNG header and then noise: several parse batches, the last one partial.
    data = png_bytes(seed=5) + random.Random(5).randbytes(2 * PARSE_BATCH_BYTES + 12345)
    response = esp_client.post("/ispws/upload", content=_pieces(report_id, data), headers={
        **auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert code_of(response.text) == 0, response.text
    assert f"<hash>{hashlib.md5(data).hexdigest()}</hash>" in response.text
    with sessions() as session:
        stored = session.execute(select(EspFile)).scalar_one()
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    plaintext = b"".join(esp_ctx.blobs.open_plaintext(esp_ctx.keys, stored.blob_name, stored.wrapped_key))
    assert plaintext == data


def test_a_body_cut_off_inside_the_file_keeps_nothing(
        esp_client: TestClient, esp_ctx: AppContext, auth: dict[str, str],
        sessions: sessionmaker[Session]) -> None:
    report_id = submit(esp_client, auth)
    data = png_bytes(seed=6) + random.Random(6).randbytes(PARSE_BATCH_BYTES + 999)
    cut = list(_pieces(report_id, data))[:-3]  # the closing boundary never arrives
    response = esp_client.post("/ispws/upload", content=iter(cut), headers={
        **auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert code_of(response.text) == 1111, response.text
    assert "The upload was cut off" in response.text
    with sessions() as session:
        assert session.execute(select(EspFile)).first() is None
    assert not [p for p in esp_ctx.settings.vault_dir.rglob("*") if p.is_file()]
