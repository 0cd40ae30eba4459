"""Bad documents get a response code and a description naming what is wrong; nothing is stored."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.esp.conftest import GOLDEN
from tests.esp.test_api import code_of
from tipline.esp.models import EspReport
from tipline.esp.schema import REPORT
from tipline.esp.xml import EspError, read_document

MINIMAL = (GOLDEN / "client_submit_minimal.xml").read_text()
XML = {"Content-Type": "text/xml"}


def variant(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new, 1)


BAD: list[tuple[str, str | bytes, int, str]] = [
    ("dtd", '<?xml version="1.0"?><!DOCTYPE report [<!ELEMENT report ANY>]><report/>', 4110,
     "document type declarations"),
    ("entity expansion", '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
     "<report>&b;</report>", 4110, "document type declarations"),
    ("external entity", '<?xml version="1.0"?><!DOCTYPE r SYSTEM "file:///etc/passwd"><report/>', 4110,
     "document type declarations"),
    ("undeclared entity", "<report>&xxe;</report>", 4110, "undefined entity"),
    ("not xml", b"\x89PNG\r\n\x1a\nnot xml", 4110, "Malformed XML"),
    ("empty", b"", 4110, "Malformed XML"),
    ("wrong root", "<fileDetails/>", 4100, "root element must be report"),
    ("order", variant("<incidentSummary>", "<reporter><reportingPerson><email>a@example.com</email>"
                      "</reportingPerson></reporter><incidentSummary>"), 4100,
     "report/incidentSummary is out of order"),
    ("missing", variant("<incidentDateTime>2012-10-15T08:00:00-07:00</incidentDateTime>", ""), 4100,
     "incidentSummary is missing its required element incidentDateTime"),
    ("unknown element", variant("<platform>", "<platfrom>") if "<platform>" in MINIMAL else
     variant("</incidentSummary>", "<colour>red</colour></incidentSummary>"), 4100,
     "report/incidentSummary/colour is not an element allowed"),
    ("unknown enum", variant("Child Pornography (possession, manufacture, and distribution)", "Spam"), 4100,
     "incidentType has the unknown value “Spam”"),
    ("too long", variant("<firstName>John</firstName>", f"<firstName>{'J' * 101}</firstName>"), 4100,
     "firstName is longer than 100 characters"),
    ("future", variant("2012-10-15T08:00:00-07:00", "2999-01-01T00:00:00Z"), 4100, "is in the future"),
    ("no zone", variant("2012-10-15T08:00:00-07:00", "2012-10-15T08:00:00"), 4100, "must carry a time zone"),
    ("bad date", variant("2012-10-15T08:00:00-07:00", "yesterday"), 4100, "is not a date and time"),
    ("no email", variant("<email>jsmith@example.com</email>", ""), 4100, "reportingPerson needs an email"),
    ("two incidents", variant("</webPageIncident>", "</webPageIncident><chatImIncident/>"), 4100,
     "must hold exactly one of"),
    ("blank escalation", variant("<incidentDateTime>", "<escalateToHighPriority> </escalateToHighPriority>"
                                 "<incidentDateTime>"), 4100, "escalateToHighPriority must not be blank"),
    ("url with space", variant("http://badsite.example/x", "http://bad site.example/x"), 4100,
     "must not contain spaces"),
    ("flag false", variant("<incidentDateTime>", "<reportAnnotations><spam>false</spam></reportAnnotations>"
                           "<incidentDateTime>"), 4100, "spam must be empty or true"),
    ("unknown attribute", variant("<report>", '<report colour="red">'), 4100, "attribute “colour”"),
]


@pytest.mark.parametrize(("name", "body", "code", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_report_is_refused(esp_client: TestClient, auth: dict[str, str], sessions: sessionmaker[Session],
                               name: str, body: str | bytes, code: int, words: str) -> None:
    data = body.encode() if isinstance(body, str) else body
    response = esp_client.post("/ispws/submit", content=data, headers={**auth, **XML})
    assert response.status_code == 200
    assert code_of(response.text) == code, response.text
    assert words in response.text.replace("&lt;", "<"), response.text
    assert "<reportId>" not in response.text
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(EspReport)).scalar_one() == 0


def test_tolerated_variants_are_accepted() -> None:
    """What real clients send beyond the schema: flags written three ways, xsi attributes,
    a charset only in the header, pretty-printing."""
    doc = MINIMAL.replace("<report>", '<report xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                          'xsi:noNamespaceSchemaLocation="https://report.cybertip.org/ispws/xsd">')
    doc = doc.replace("<incidentDateTime>", "<reportAnnotations><spam/><sextortion />"
                      "<informational>true</informational></reportAnnotations>\n  <incidentDateTime>")
    value = read_document(doc.encode(), "report", REPORT)
    assert value["incidentSummary"]["reportAnnotations"] == {"spam": True, "sextortion": True,
                                                             "informational": True}
    latin = MINIMAL.split("\n", 1)[1].replace("Smith", "Sm\u00eft").encode("latin-1")
    assert read_document(latin, "report", REPORT, "ISO-8859-1")["reporter"]["reportingPerson"]["lastName"] == "Sm\u00eft"


def test_limits_on_size_and_depth() -> None:
    with pytest.raises(EspError) as deep:
        read_document(b"<report>" + b"<a>" * 40 + b"</a>" * 40 + b"</report>", "report", REPORT)
    assert deep.value.code == 4110 and "too deep" in deep.value.message


def test_full_client_report_parses_to_json() -> None:
    value = read_document((GOLDEN / "client_submit_full.xml").read_bytes(), "report", REPORT)
    reported = value["personOrUserReported"][0]
    assert reported["personOrUserReportedPerson"]["ageAssertionDiscrepancy"] is True
    assert reported["associatedAccount"][0]["@accountType"] == "Linked"
    assert value["lawEnforcement"]["@fleaCountry"] == "US"
    assert value["batchedReport"] == {"value": None, "@reason": "VIRAL_POTENTIAL_MEME"}
    assert reported["priorCTReports"] == [111, 222]
