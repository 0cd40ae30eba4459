"""Golden files for every request and response document of the partner API (/ispws).

Requests: each request document in tests/esp/golden is read with the server's own reader
(esp.xml.read_document against esp.schema); the JSON it makes must equal the `.json` file of
the same name.
  - client_submit_minimal.xml, client_submit_full.xml, client_fileinfo_full.xml: the real
    client's bytes as recorded in esp-client-requests.txt. Never rewritten; the client must
    still write them byte for byte (read with its own models and written again).
  - client_submit_fullest.xml, client_fileinfo_minimal.xml, client_fileinfo_fullest.xml,
    client_fileinfo_supplemental.xml: written by ncmec-cybertip 0.1.1 itself, from the
    documents of tests/esp/client_script.py (`client_script.py capture`); the live test
    (test_real_client.py) sends the same documents.
Responses: each response document the server writes (esp.xml.report_response and
report_done_response, with fixed inputs) must equal its report_response_*.xml or
report_done_response_*.xml byte for byte, and the real client's own response handling
(CyberTiplineClient._parse, run in its Python 3.13 venv) must read each one as expected.

After an intended change, rewrite the goldens and review the diff:

    TIPLINE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/esp/test_golden.py
    git diff tests/esp/golden

That rewrites the .json files, the response documents and (when the client's venv is
available) the client-written request documents. Without the variable the committed files
are only read and compared.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.esp.conftest import GOLDEN
from tests.esp.test_real_client import client_python
from tipline.esp import schema
from tipline.esp.xml import DESCRIPTIONS, Code, read_document, report_done_response, report_response

UPDATE = os.environ.get("TIPLINE_UPDATE_GOLDEN") == "1"
SCRIPT = Path(__file__).with_name("client_script.py")

RECORDED = ("client_submit_minimal.xml", "client_submit_full.xml", "client_fileinfo_full.xml")
CAPTURED = ("client_submit_fullest.xml", "client_fileinfo_minimal.xml", "client_fileinfo_fullest.xml",
            "client_fileinfo_supplemental.xml")
REQUESTS = RECORDED + CAPTURED

# Fixed inputs for the response documents.
REPORT_ID = 250799407
FILE_ID = "3a1d4fd4106b82499b7c93442aa7dca4"
OTHER_FILE_ID = "d58d6e08b34d3daf19f479f7912fadeb"
MD5 = "a1cf09b59e5060f3beccdcf7a37189f0"
STATUS = "Remote User : esp-test-user, Remote Ip : 127.0.0.1"
MESSAGE = "Validation failed: report/incidentSummary/incidentType has the unknown value “a<b & c>”."
ERROR_CODES = sorted(code for code in DESCRIPTIONS if code != Code.success)


def _error_report_id(code: int) -> int | None:
    """The server names the report in the errors about one (5001 and up), not in others."""
    return REPORT_ID if code >= Code.report_not_found else None


def _ok(code: int = 0, description: str = "Success", report_id: int | None = REPORT_ID,
        file_id: str | None = None, md5: str | None = None) -> dict[str, Any]:
    return {"ok": {"response_code": code, "response_description": description, "report_id": report_id,
                   "file_id": file_id, "hash": md5}}


def _done(file_ids: list[str]) -> dict[str, Any]:
    return {"ok": {"response_code": 0, "report_id": REPORT_ID, "files": {"file_id": file_ids}}}


def _api_error(code: int, description: str | None, report_id: int | None) -> dict[str, Any]:
    return {"api_error": [code, description, report_id, "golden"]}


# name -> (the bytes the server writes, the client's response model, what the client makes of it)
RESPONSES: dict[str, tuple[bytes, str, dict[str, Any]]] = {
    "report_response_status.xml": (report_response(Code.success, STATUS), "ReportResponse",
                                   _ok(description=STATUS, report_id=None)),
    "report_response_submit.xml": (report_response(Code.success, report_id=REPORT_ID), "ReportResponse", _ok()),
    "report_response_upload.xml": (
        report_response(Code.success, report_id=REPORT_ID, file_id=FILE_ID, md5=MD5), "ReportResponse",
        _ok(file_id=FILE_ID, md5=MD5)),
    "report_response_fileinfo.xml": (report_response(Code.success, report_id=REPORT_ID, file_id=FILE_ID),
                                     "ReportResponse", _ok(file_id=FILE_ID)),
    "report_response_retract.xml": (report_response(Code.success, report_id=REPORT_ID), "ReportResponse",
                                    _ok()),
    **{f"report_response_error_{code}.xml": (
        report_response(code, report_id=_error_report_id(code)), "ReportResponse",
        _api_error(code, DESCRIPTIONS[code], _error_report_id(code))) for code in ERROR_CODES},
    # A checker's message as the server sends it: escaped markup, non-ASCII in UTF-8.
    "report_response_error_4100_message.xml": (report_response(Code.validation_failed, MESSAGE),
                                               "ReportResponse", _api_error(4100, MESSAGE, None)),
    "report_done_response_files.xml": (report_done_response(Code.success, REPORT_ID, [FILE_ID, OTHER_FILE_ID]),
                                       "ReportDoneResponse", _done([FILE_ID, OTHER_FILE_ID])),
    "report_done_response_no_files.xml": (report_done_response(Code.success, REPORT_ID), "ReportDoneResponse",
                                          _done([])),
    **{f"report_done_response_error_{code}.xml": (
        report_done_response(code, REPORT_ID), "ReportDoneResponse", _api_error(code, None, REPORT_ID))
        for code in (Code.report_not_found, Code.already_retracted, Code.already_finished)},
    # An unexpected failure at finish (api.partner_endpoint): the report id is not known there.
    "report_done_response_server_error.xml": (report_done_response(Code.server_error, 0), "ReportDoneResponse",
                                              _api_error(1000, None, 0)),
}


def _compare(path: Path, actual: bytes) -> None:
    """The committed file must hold exactly `actual` (rewritten first with TIPLINE_UPDATE_GOLDEN=1)."""
    if UPDATE:
        path.write_bytes(actual)
    assert path.exists(), f"{path.name} is missing; create it with TIPLINE_UPDATE_GOLDEN=1"
    assert path.read_bytes() == actual, (
        f"{path.name} differs from what is produced now; if the change is intended, rerun with "
        "TIPLINE_UPDATE_GOLDEN=1 and review the diff")


def _client(*args: str) -> Any:
    run = subprocess.run([client_python(), SCRIPT, *args], capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


# --- requests --------------------------------------------------------------------------------

def test_the_client_still_writes_the_request_goldens() -> None:
    captured: dict[str, str] = _client("capture")
    assert sorted(captured) == sorted(CAPTURED)
    for name, document in captured.items():
        _compare(GOLDEN / name, document.encode("utf-8"))
    # The recorded bytes: read with the client's own models and written again, unchanged.
    assert _client("roundtrip", *(str(GOLDEN / name) for name in REQUESTS)) == dict.fromkeys(REQUESTS, True)


@pytest.mark.parametrize("name", REQUESTS)
def test_request_golden_reads_as_its_json(name: str) -> None:
    data = (GOLDEN / name).read_bytes()
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<")  # as the client writes them
    if name.startswith("client_fileinfo"):
        document = read_document(data, "fileDetails", schema.FILE_DETAILS)
    else:
        document = read_document(data, "report", schema.REPORT)
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    _compare((GOLDEN / name).with_suffix(".json"), text.encode("utf-8"))
    assert json.loads((GOLDEN / name).with_suffix(".json").read_text("utf-8")) == document


# --- responses -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_response_golden_bytes(name: str) -> None:
    body, _model, _expected = RESPONSES[name]
    _compare(GOLDEN / name, body)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><report')
    assert b"\n" not in body  # one line, as the service answers


def test_every_documented_code_the_server_writes_has_a_golden() -> None:
    codes = {v for k, v in vars(Code).items() if not k.startswith("_")}
    assert set(DESCRIPTIONS) == codes
    assert {f"report_response_error_{c}.xml" for c in codes - {0}} <= set(RESPONSES)
    on_disk = {p.name for p in GOLDEN.glob("report_*response_*.xml")}
    assert on_disk == set(RESPONSES), "stale or missing response goldens"


def test_the_real_client_reads_every_response_golden() -> None:
    pairs = [f"{model}={GOLDEN / name}" for name, (_body, model, _expected) in sorted(RESPONSES.items())]
    found = _client("parse", *pairs)
    assert found == {name: expected for name, (_body, _model, expected) in RESPONSES.items()}
