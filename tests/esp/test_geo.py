"""The IP country hint: offline lookups, and how a partner report records one."""

from __future__ import annotations

from typing import Any

import pytest

from tipline.esp import geo, mapping
from tipline.reports.models import Report


@pytest.mark.parametrize(("ip", "country"), [
    ("8.8.8.8", "US"), ("81.2.69.160", "GB"), ("139.130.4.5", "AU"),
    ("2001:4860:4860::8888", "US"),
])
def test_public_addresses_have_a_country_with_the_database_date(ip: str, country: str) -> None:
    hint = geo.lookup(ip)
    assert hint is not None
    assert hint.country == country
    assert hint.database_date == "2024-06-18"
    assert hint.database == "geoip2fast GeoLite2 2024-06-18"


@pytest.mark.parametrize("ip", [
    "10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "fd00::1",
    "192.0.2.10", "203.0.113.5", "2001:db8::1",  # documentation ranges
    "not an address", "", "999.1.1.1",
])
def test_private_reserved_and_invalid_addresses_have_none(ip: str) -> None:
    assert geo.lookup(ip) is None


def test_the_database_is_loaded_once() -> None:
    geo.lookup("8.8.8.8")
    first = geo._database(None)
    geo.lookup("81.2.69.160")
    assert geo._database(None) is first


def doc(*ips: str, child_country: str | None = None) -> dict[str, Any]:
    victim: dict[str, Any] = {"victimPerson": {"age": 12}}
    if child_country:
        victim["estimatedLocation"] = {"countryCode": child_country}
    return {
        "incidentSummary": {"incidentType": "Online Enticement of Children for Sexual Acts",
                            "incidentDateTime": "2026-01-02T03:04:05+00:00"},
        "reporter": {"reportingPerson": {"email": ["reports@example.com"]}},
        "personOrUserReported": [{"screenName": "quiet_owl",
                                  "ipCaptureEvent": [{"ipAddress": ip} for ip in ips]}],
        "victim": [victim],
    }


def test_the_first_public_ip_of_the_reported_person_gives_the_hint() -> None:
    hint = mapping.ip_country_hint(doc("10.0.0.1", "203.0.113.5", "81.2.69.160", "8.8.8.8"))
    assert hint == {"country": "GB", "source": "geoip2fast GeoLite2 2024-06-18",
                    "database_date": "2024-06-18", "ip": "81.2.69.160", "authoritative": False}


def test_no_hint_without_a_public_ip() -> None:
    assert mapping.ip_country_hint(doc("10.0.0.1", "192.0.2.10")) is None
    assert mapping.ip_country_hint(doc()) is None


def test_the_hint_is_recorded_on_the_report_and_never_fills_the_countries() -> None:
    document = doc("8.8.8.8")
    data = mapping.report_create(document, partner_name="Example Photo App", esp_report_id=123456789)
    assert data.child_country is None
    assert data.reporter_country is None
    report = Report(suspect=data.suspect.model_dump(), child_country=data.child_country)
    mapping.apply_ip_country_hint(report, document)
    assert report.suspect["ip_country_hint"]["country"] == "US"
    assert report.suspect["usernames"] == ["quiet_owl", "8.8.8.8"]
    assert report.child_country is None


def test_the_partners_own_country_is_kept_even_when_the_ip_disagrees() -> None:
    document = doc("8.8.8.8", child_country="GB")
    data = mapping.report_create(document, partner_name="Example Photo App", esp_report_id=123456789)
    assert data.child_country == "GB"
    report = Report(suspect=data.suspect.model_dump(), child_country=data.child_country)
    mapping.apply_ip_country_hint(report, document)
    assert (report.child_country, report.suspect["ip_country_hint"]["country"]) == ("GB", "US")


def test_a_report_without_public_ips_is_left_alone() -> None:
    report = Report(suspect={"usernames": []})
    assert mapping.apply_ip_country_hint(report, doc("10.0.0.1")) is None
    assert report.suspect == {"usernames": []}
