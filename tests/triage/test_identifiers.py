"""Normalisation tables: the same identifier written many ways is one value; junk is None."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from tipline.triage.identifiers import (
    Identifier,
    IdentifierKind,
    describe,
    extract,
    ip_scope,
    normalise_email,
    normalise_ip,
    normalise_phone,
    normalise_platform,
    normalise_url,
    normalise_username,
    profile_username,
)


@pytest.mark.parametrize(("raw", "region"), [
    ("+44 20 7946 0958", None),
    ("+44 (0)20 7946 0958", None),
    ("020 7946 0958", "GB"),
    ("0044 20 7946 0958", "GB"),
    ("0044 20 7946 0958", None),
    ("+44-20-7946-0958", "US"),
    ("tel:+442079460958", None),
])
def test_phone_variants_are_one_number(raw: str, region: str | None) -> None:
    assert normalise_phone(raw, region) == "+442079460958"


@pytest.mark.parametrize(("raw", "region"), [
    ("020 7946 0958", None),  # a national number means nothing without its country
    ("12345", "GB"),
    ("call me", "GB"),
    ("", "GB"),
    ("+44 20 7946", None),
    ("2024-01-15", "GB"),
])
def test_phone_junk(raw: str, region: str | None) -> None:
    assert normalise_phone(raw, region) is None


def test_us_number_in_national_format() -> None:
    assert normalise_phone("(201) 555-0123", "US") == "+12015550123"


@pytest.mark.parametrize("raw", [
    "Alice@Example.ORG", " alice@example.org ", "<alice@example.org>", "mailto:ALICE@example.org",
    "alice@example.org.",
])
def test_email_variants(raw: str) -> None:
    assert normalise_email(raw) == "alice@example.org"


def test_email_keeps_sub_address() -> None:
    assert normalise_email("Alice+Chat@example.org") == "alice+chat@example.org"


@pytest.mark.parametrize("raw", ["alice", "alice@", "@example.org", "alice@example", "a@@example.org",
                                 "alice smith@example.org", "alice@exa_mple.org", ""])
def test_email_junk(raw: str) -> None:
    assert normalise_email(raw) is None


@pytest.mark.parametrize("raw", [
    "https://example.org/profile/NightOwl",
    "http://example.org/profile/NightOwl",
    "HTTPS://WWW.EXAMPLE.ORG/profile/NightOwl/",
    "https://example.org:443/profile/NightOwl#about",
    "http://example.org:80/profile/NightOwl?utm_source=chat&utm_medium=dm&fbclid=XYZ",
    "example.org/profile/NightOwl",
    "www.example.org/profile//NightOwl",
    "hxxps://example[.]org/profile/NightOwl",
    "<https://example.org/profile/NightOwl>.",
    "https://user:secret@example.org/profile/NightOwl",
])
def test_url_variants_are_one_url(raw: str) -> None:
    assert normalise_url(raw) == "https://example.org/profile/NightOwl"


def test_url_keeps_what_matters() -> None:
    # Path case, non-default ports and real parameters (sorted) distinguish pages.
    assert normalise_url("https://example.org/Page?b=2&a=1&utm_campaign=x") == "https://example.org/Page?a=1&b=2"
    assert normalise_url("https://example.org:8443/x") == "https://example.org:8443/x"
    assert normalise_url("https://example.org/page") != normalise_url("https://example.org/Page")
    assert normalise_url("https://example.org") == "https://example.org"
    assert normalise_url("https://Bücher.example/") == "https://xn--bcher-kva.example"


@pytest.mark.parametrize("raw", ["not a link", "e.g.", "javascript:alert(1)", "ftp://example.org/x",
                                 "https://", "https://exa mple.org", "https://localhost/x", "https://example.org:99999/"])
def test_url_junk(raw: str) -> None:
    assert normalise_url(raw) is None


@pytest.mark.parametrize(("raw", "username"), [
    ("https://www.instagram.com/Shadow.Fox/", "instagram:shadow.fox"),
    ("https://m.instagram.com/shadow.fox?igsh=abc", "instagram:shadow.fox"),
    ("https://www.tiktok.com/@Quiet_Owl", "tiktok:quiet_owl"),
    ("https://twitter.com/NightOwl_7", "x:nightowl_7"),
    ("https://x.com/nightowl_7/status/1234", "x:nightowl_7"),
    ("https://www.facebook.com/profile.php?id=100012345", "facebook:100012345"),
    ("https://old.reddit.com/user/Some_One/", "reddit:some_one"),
    ("https://www.snapchat.com/add/snapper", "snapchat:snapper"),
    ("https://t.me/Example_Bot", "telegram:example_bot"),
])
def test_profile_urls_reduce_to_platform_and_username(raw: str, username: str) -> None:
    url = normalise_url(raw)
    assert url is not None
    assert profile_username(url) == username


@pytest.mark.parametrize("raw", ["https://www.instagram.com/p/Cabc123/", "https://x.com/i/status/1",
                                 "https://www.tiktok.com/explore", "https://example.org/someone",
                                 "https://www.facebook.com/groups/12345"])
def test_not_profile_urls(raw: str) -> None:
    url = normalise_url(raw)
    assert url is not None
    assert profile_username(url) is None


def test_twitter_and_x_are_one_site() -> None:
    assert normalise_url("https://mobile.twitter.com/nightowl_7") == normalise_url("https://x.com/NightOwl_7")


@pytest.mark.parametrize(("platform", "expected"), [
    ("Instagram", "instagram"), ("insta", "instagram"), ("www.instagram.com", "instagram"),
    ("X (Twitter)", "x"), ("Twitter", "x"), ("Snap", "snapchat"), ("ExampleChat", "examplechat"),
    ("  Pixel Play ", "pixelplay"), ("", ""),
])
def test_platform_names(platform: str, expected: str) -> None:
    assert normalise_platform(platform) == expected


def test_usernames_compare_only_on_the_same_platform() -> None:
    assert normalise_username("Instagram", "@Shadow.Fox") == "instagram:shadow.fox"
    assert normalise_username("insta", "shadow.fox") == normalise_username("Instagram", "@Shadow.Fox")
    assert normalise_username("TikTok", "shadow.fox") != normalise_username("Instagram", "shadow.fox")


@pytest.mark.parametrize(("platform", "raw"), [("", "shadowfox"), ("Instagram", "   "), ("Instagram", "@"),
                                               ("Instagram", "!!!"), ("Instagram", "x" * 101)])
def test_username_junk(platform: str, raw: str) -> None:
    assert normalise_username(platform, raw) is None


@pytest.mark.parametrize(("raw", "expected", "scope"), [
    ("192.0.2.10", "192.0.2.10", "reserved"),
    (" 192.0.2.10:8080 ", "192.0.2.10", "reserved"),
    ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1", "reserved"),
    ("[2001:db8::1]", "2001:db8::1", "reserved"),
    ("::ffff:198.51.100.7", "198.51.100.7", "reserved"),
    ("10.0.0.7", "10.0.0.7", "private"),
    ("192.168.1.1", "192.168.1.1", "private"),
    ("fd00::1", "fd00::1", "private"),
    ("127.0.0.1", "127.0.0.1", "private"),
    ("8.8.8.8", "8.8.8.8", ""),
])
def test_ip_addresses(raw: str, expected: str, scope: str) -> None:
    assert normalise_ip(raw) == expected
    assert ip_scope(expected) == scope


@pytest.mark.parametrize("raw", ["999.1.1.1", "192.0.2", "abc", "2001:db8::g", ""])
def test_ip_junk(raw: str) -> None:
    assert normalise_ip(raw) is None


def test_describe() -> None:
    assert describe(IdentifierKind.email, "a@example.org") == "email: a@example.org"
    assert describe("username", "pixelplay:quietowl") == "username: quietowl (pixelplay)"
    assert describe(IdentifierKind.ip, "10.0.0.7") == "ip: 10.0.0.7 (private)"
    assert describe(IdentifierKind.ip, "8.8.8.8") == "ip: 8.8.8.8"


def fake_report(**overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "platform": "", "urls": [], "suspect": {}, "description": "",
        "child_country": None, "reporter_country": None,
    }
    fields.update(overrides)
    return SimpleNamespace(**fields)


def values(found: list[Identifier]) -> set[tuple[str, str]]:
    return {(item.kind.value, item.value) for item in found}


def test_extract_from_every_field() -> None:
    report = fake_report(
        platform="Instagram",
        urls=["https://www.instagram.com/Shadow.Fox/", "http://192.0.2.44/chat"],
        suspect={
            "usernames": ["@shadow.fox", "fox@example.com", "https://t.me/foxbot"],
            "profile_links": ["https://example.org/u/fox"],
            "emails": ["Fox.Den@Example.ORG", "not-an-email"],
            "phones": ["020 7946 0958", "nonsense"],
            "details": "Also wrote from den2@example.com and www.example.com/den?utm_source=x.",
        },
        description="He said to call 020 7946 0123 or see https://example.net/page#top, ok?",
        child_country="GB",
    )
    assert values(extract(report)) == {
        ("url", "https://instagram.com/shadow.fox"), ("username", "instagram:shadow.fox"),
        ("url", "https://192.0.2.44/chat"), ("ip", "192.0.2.44"),
        ("email", "fox@example.com"),
        ("url", "https://t.me/foxbot"), ("username", "telegram:foxbot"),
        ("url", "https://example.org/u/fox"),
        ("email", "fox.den@example.org"),
        ("phone", "+442079460958"),
        ("email", "den2@example.com"), ("url", "https://example.com/den"),
        ("phone", "+442079460123"),
        ("url", "https://example.net/page"),
    }


def test_extract_keeps_one_of_each_with_the_first_raw() -> None:
    report = fake_report(platform="Instagram", urls=["https://instagram.com/fox", "instagram.com/FOX/"],
                         suspect={"usernames": ["Fox"]})
    found = extract(report)
    assert sorted((i.kind.value, i.value, i.raw) for i in found) == [
        ("url", "https://instagram.com/fox", "https://instagram.com/fox"),
        ("username", "instagram:fox", "https://instagram.com/fox"),
    ]


def test_extract_is_conservative_with_free_text() -> None:
    report = fake_report(
        description="It happened on 2024-01-15 at 10:30, case 123456789, version 1.2.3.4, "
                    "e.g. on the bus; mail me at name at example dot org.",
        child_country="GB",
    )
    assert extract(report) == []


def test_extract_skips_platform_front_pages() -> None:
    report = fake_report(urls=["https://www.instagram.com/", "https://tiktok.com"])
    assert extract(report) == []


def test_phone_region_falls_back_to_the_reporters_country() -> None:
    report = fake_report(suspect={"phones": ["020 7946 0958"]}, child_country="US", reporter_country="GB")
    assert values(extract(report)) == {("phone", "+442079460958")}


def test_phone_in_text_with_the_international_prefix_00() -> None:
    report = fake_report(description="His number is 0044 20 7946 0958, he said.", child_country="US")
    assert [(i.kind.value, i.value, i.raw) for i in extract(report)] == [
        ("phone", "+442079460958", "0044 20 7946 0958")]


def test_other_parties_named_by_a_partner_are_indexed_too() -> None:
    from types import SimpleNamespace

    from tipline.triage.identifiers import extract

    report = SimpleNamespace(
        urls=[], description="", platform="Instagram", child_country="GB", reporter_country=None,
        suspect={"usernames": ["shadowfox_99"], "other_parties": [
            {"role": "victim", "screen_names": ["little.star"], "emails": ["Star@Example.ORG"]},
            {"role": "intended_recipient", "phones": ["020 7946 0958"], "profile_urls": []},
            "not a party",
        ]},
    )
    values = {(i.kind.value, i.value) for i in extract(report)}  # type: ignore[arg-type]
    assert ("email", "star@example.org") in values
    assert ("phone", "+442079460958") in values
    assert ("username", "instagram:little.star") in values
    assert ("username", "instagram:shadowfox_99") in values


# --- phone numbers in free text ---------------------------------------------------------------

def _phones(text: str, regions: list[str | None]) -> list[tuple[str, str]]:
    from tipline.triage.identifiers import phones_in_text

    return list(phones_in_text(text, regions))


def test_timestamps_and_addresses_in_text_are_not_phone_numbers() -> None:
    text = "IP 8.8.0.6 (Upload 2026-01-02T03:04:05+00:00), seen 2026-01-03 +01:00, ref 0045"
    assert _phones(text, [None]) == []


@pytest.mark.parametrize("written", [
    "+44 20 7946 0958", "\uff0b44 20 7946 0958", "+(44) 20 7946 0958", "+ 44 20 7946 0958",
    "0044 20 7946 0958",
])
def test_international_numbers_in_text_are_found_without_a_region(written: str) -> None:
    text = f"Upload 2026-01-02T03:04:05+00:00. He wrote {written} twice."
    assert [e164 for _raw, e164 in _phones(text, [None])] == ["+442079460958"]


_FRAGMENTS = ["+44 20 7946 0958", "+1 201-555-0123", "0044 20 7946 0958", "+00:00", "+0", "+", " ",
              "2026-01-02T03:04:05", "8.8.0.6", "call", "\uff0b", "(", ")", "-", "7946", "0958", "+(",
              "+ 1", "33 1 23 45 67 89", "\u0664\u0664", "00"]


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.lists(st.sampled_from(_FRAGMENTS), max_size=12))
def test_skipping_text_without_a_country_code_finds_the_same_numbers(parts: list[str]) -> None:
    # The shortcut must never hide a number the full matcher would have read.
    import phonenumbers

    from tipline.triage.identifiers import _INTERNATIONAL_00

    text = "".join(parts)
    full = [(text[m.start:m.end].strip(), phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164))
            for m in phonenumbers.PhoneNumberMatcher(_INTERNATIONAL_00.sub("+ ", text), None,
                                                     leniency=phonenumbers.Leniency.VALID)]
    assert _phones(text, [None]) == full
