"""Victims' and intended recipients' identifiers are kept apart from the suspect's."""

from __future__ import annotations

from typing import Any

from tipline.esp import mapping
from tipline.reports.models import Report


def document() -> dict[str, Any]:
    return {
        "personOrUserReported": {"screenName": "suspect_1"},
        "intendedRecipient": [
            {"intendedRecipientPerson": {"email": [{"value": "ivy@example.com", "@type": "Home"}],
                                         "phone": {"value": "5550101", "@countryCallingCode": "+1"}},
             "screenName": "ivy_r", "displayName": ["Ivy R", "ivy_r"],
             "profileUrl": ["https://example.com/u/ivy_r", "not a url"]},
            {"intendedRecipientPerson": {"firstName": "Nobody"}},
        ],
        "victim": {"victimPerson": {"age": 12, "email": "val@example.com"}, "espIdentifier": "v-9",
                   "associatedAccount": [{"screenName": "val_alt", "profileUrl": "https://example.com/u/val_alt",
                                          "email": "val.alt@example.com"}]},
    }


def test_other_parties_have_their_roles_and_identifiers() -> None:
    assert mapping.other_parties(document()) == [
        {"role": "intended_recipient", "screen_names": ["ivy_r", "Ivy R"], "emails": ["ivy@example.com"],
         "phones": ["+1 5550101"], "profile_urls": ["https://example.com/u/ivy_r"]},
        {"role": "victim", "screen_names": ["v-9", "val_alt"],
         "emails": ["val@example.com", "val.alt@example.com"], "phones": [],
         "profile_urls": ["https://example.com/u/val_alt"]},
    ]


def test_other_parties_never_reach_the_suspect_lists() -> None:
    suspect, _notes = mapping._suspect(document())
    assert suspect.usernames == ["suspect_1"]
    assert suspect.emails == [] and suspect.profile_links == []


def test_apply_keeps_the_other_keys_and_writes_nothing_when_empty() -> None:
    report = Report(suspect={"usernames": ["suspect_1"], "ip_country_hint": {"country": "US"}})
    parties = mapping.apply_other_parties(report, document())
    assert report.suspect["usernames"] == ["suspect_1"] and report.suspect["ip_country_hint"] == {"country": "US"}
    assert report.suspect["other_parties"] == parties and len(parties) == 2
    empty = Report(suspect={"usernames": []})
    assert mapping.apply_other_parties(empty, {"victim": {"victimPerson": {"age": 12}}}) == []
    assert empty.suspect == {"usernames": []}
