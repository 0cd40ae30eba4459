from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

UNCONFIRMED = "Unconfirmed: check before relying on it"


class _Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.levels: list[int] = []
        self.inline_styles = 0
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if re.fullmatch(r"h[1-6]", tag):
            self.levels.append(int(tag[1]))
        if "style" in names or tag == "style":
            self.inline_styles += 1
        if tag == "script" and "src" not in names:
            self.inline_scripts += 1


def _check_structure(html: str) -> None:
    parser = _Headings()
    parser.feed(html)
    assert parser.levels[0] == 1 and parser.levels.count(1) == 1
    for before, after in zip(parser.levels, parser.levels[1:], strict=False):
        assert after <= before + 1, f"heading jumps from h{before} to h{after}"
    assert parser.inline_styles == 0 and parser.inline_scripts == 0


def test_index_lists_countries_and_international_bodies(routing_client: TestClient) -> None:
    page = routing_client.get("/where-to-report")
    assert page.status_code == 200
    assert '<a href="/where-to-report/GB">United Kingdom</a>' in page.text
    assert '<a href="/where-to-report/FJ">' not in page.text  # nothing listed there
    assert "INTERPOL" in page.text
    assert '<label for="where-country">' in page.text
    _check_structure(page.text)


def test_chooser_works_without_javascript(routing_client: TestClient) -> None:
    chosen = routing_client.get("/where-to-report", params={"country": "gb"})
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/where-to-report/GB"
    wrong = routing_client.get("/where-to-report", params={"country": "QQ"})
    assert wrong.status_code == 422
    assert "Choose a country from the list." in wrong.text


def test_country_page_shows_emergency_number_and_unconfirmed_badges(routing_client: TestClient) -> None:
    page = routing_client.get("/where-to-report/GB")
    assert page.status_code == 200
    assert '<a href="tel:999">999</a>' in page.text
    assert "Internet Watch Foundation" in page.text
    # Childline is unconfirmed in the bundled file; CEOP and the IWF are confirmed.
    childline = page.text.split("Childline (NSPCC)")[1].split("</article>")[0]
    assert UNCONFIRMED in childline
    iwf = page.text.split("Internet Watch Foundation (IWF)")[1].split("</article>")[0]
    assert UNCONFIRMED not in iwf
    assert "Not accepted: you will be asked who you are" in page.text  # CEOP is not anonymous
    _check_structure(page.text)


def test_country_page_works_in_lower_case(routing_client: TestClient) -> None:
    assert "Internet Watch Foundation" in routing_client.get("/where-to-report/gb").text


def test_unlisted_country_gets_its_emergency_number_and_the_police(routing_client: TestClient) -> None:
    page = routing_client.get("/where-to-report/FJ")
    assert page.status_code == 200
    assert '<a href="tel:911">911</a>' in page.text
    assert "Contact your local police" in page.text
    assert "We have not checked which one reaches the police first." in page.text
    _check_structure(page.text)


def test_country_without_any_number_still_says_call_the_police(routing_client: TestClient) -> None:
    page = routing_client.get("/where-to-report/AQ")
    assert page.status_code == 200
    assert "Call your local emergency number or the police now." in page.text


@pytest.mark.parametrize("code", ["QQ", "GBR", "eu", "12"])
def test_unknown_country_is_a_404_page(routing_client: TestClient, code: str) -> None:
    page = routing_client.get(f"/where-to-report/{code}")
    assert page.status_code == 404
    assert "We do not know a country with that code." in page.text


def test_us_state_selector_shows_that_states_line(routing_client: TestClient) -> None:
    page = routing_client.get("/where-to-report/US")
    assert '<select id="state-select" name="state"' in page.text
    assert "NCMEC CyberTipline" in page.text
    assert "Texas Abuse Hotline" not in page.text

    texas = routing_client.get("/where-to-report/US", params={"state": "US-TX"})
    assert "Child protection in Texas" in texas.text
    assert "Texas Abuse Hotline (DFPS)" in texas.text
    assert '<a href="tel:+18002525400">+1-800-252-5400</a>' in texas.text
    assert "Florida Abuse Hotline" not in texas.text
    assert "Dallas ICAC Task Force" in texas.text  # the state's police task forces too
    assert '<option value="US-TX" selected>Texas</option>' in texas.text
    _check_structure(texas.text)


def test_unknown_state_asks_again(routing_client: TestClient) -> None:
    page = routing_client.get("/where-to-report/US", params={"state": "US-ZZ"})
    assert page.status_code == 200
    assert "Choose a state from the list." in page.text


def test_country_cookie_is_set_and_redirect_stays_on_site(routing_client: TestClient) -> None:
    answer = routing_client.get("/country", params={"c": "gb", "next": "/report?x=1"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/report?x=1"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("tl_country=GB;")
    for part in ("HttpOnly", "Max-Age=31536000", "Path=/", "SameSite=lax"):
        assert part.lower() in cookie.lower()


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example/", "/\\evil.example", "evil", "/\t/evil.example", ""]
)
def test_redirect_elsewhere_goes_home_instead(routing_client: TestClient, target: str) -> None:
    answer = routing_client.get("/country", params={"c": "GB", "next": target})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


@pytest.mark.parametrize("code", ["", "QQ", "EU"])
def test_empty_or_unknown_country_clears_the_cookie(routing_client: TestClient, code: str) -> None:
    answer = routing_client.get("/country", params={"c": code, "next": "/where-to-report"})
    assert answer.headers["location"] == "/where-to-report"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("tl_country=") and "max-age=0" in cookie.lower()


def test_chosen_country_shows_in_the_safety_banner(routing_client: TestClient) -> None:
    routing_client.cookies.set("tl_country", "NZ")
    page = routing_client.get("/where-to-report")
    assert "Call 111 now." in page.text
    assert '<option value="NZ" selected>' in page.text
