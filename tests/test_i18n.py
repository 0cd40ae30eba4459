"""Every string a reporter reads goes through gettext: under the pseudo-locale each one is
wrapped in ⟦ ⟧, so any text left bare was never marked for translation."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from tests.helpers import csrf_token, report_fields
from tests.intake.test_report_form import multipart


class TextCollector(HTMLParser):
    SKIP = frozenset({"script", "style", "option", "title"})

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skipping.append(tag)
        for name, value in attrs:
            if name in ("aria-label", "placeholder", "alt", "title") and value:
                self.texts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self.texts.append(data.strip())


def untranslated(html: str, allowed: set[str]) -> list[str]:
    collector = TextCollector()
    collector.feed(html)
    bare = []
    for text in collector.texts:
        rest = re.sub(r"⟦.*?⟧", " ", text, flags=re.DOTALL)
        for word in re.findall(r"[^\W\d_]{2,}", rest):
            if word not in allowed:
                bare.append(text)
                break
    return bare


@pytest.fixture
def allowed(ctx) -> set[str]:  # type: ignore[no-untyped-def]
    # Data, not interface text: the site's name, country names, codename words, references.
    words = {"Tipline", "UTC", "KB", "TL"}
    for _code, name in ctx.directory.country_choices():
        words.update(re.findall(r"[^\W\d_]{2,}", name))
    return words


PSEUDO = {"accept-language": "qps"}


@pytest.mark.parametrize("path", ["/", "/report", "/followup", "/help"])
def test_pages_have_no_untranslated_text(client: TestClient, allowed: set[str], path: str) -> None:
    page = client.get(path, headers=PSEUDO)
    assert page.status_code == 200
    assert untranslated(page.text, allowed) == []


def test_receipt_and_errors_are_translated(client: TestClient, ctx, allowed: set[str]) -> None:  # type: ignore[no-untyped-def]
    for org in ctx.directory.organisations("GB"):  # directory data shown on the receipt
        allowed = allowed | set(re.findall(r"[^\W\d_]{2,}", f"{org.name} {org.phone} {org.url} {org.report_url}"))
    form = client.get("/report", headers=PSEUDO)
    bad = client.post("/report", headers=PSEUDO, files=multipart(
        report_fields(csrf_token=csrf_token(form.text), description="")))
    assert bad.status_code == 422
    assert untranslated(bad.text, allowed | {"ExampleChat", "shadowfox", "chat", "example", "org", "https", "An", "account", "keeps", "messaging", "my", "son", "and", "demands", "money", "Friday", "evening"}) == []
    good = client.post("/report", headers=PSEUDO, files=multipart(
        report_fields(csrf_token=csrf_token(form.text))))
    assert good.status_code == 201
    codename_words = set(re.search(r'id="codename">([^<]+)<', good.text).group(1).split())  # type: ignore[union-attr]
    reference_words = set(re.findall(r"[A-Z]{2,}", re.search(r'id="reference">([^<]+)<', good.text).group(1)))  # type: ignore[union-attr]
    assert untranslated(good.text, allowed | codename_words | reference_words) == []


def test_english_is_the_default(client: TestClient) -> None:
    page = client.get("/", headers={"accept-language": "en-US"})
    assert "⟦" not in page.text
    assert "Make a report" in page.text
