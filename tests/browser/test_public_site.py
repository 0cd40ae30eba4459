"""The public site in a real browser (Debian's Chromium), against a real `tipline serve`,
with JavaScript on and off: the site must work for a reporter either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server
from tests.helpers import png_bytes

pytestmark = pytest.mark.browser

JS = pytest.mark.parametrize("javascript", [False, True], ids=["js-off", "js-on"])
DESCRIPTION = "An account called shadowfox_99 keeps messaging my son and demands money."
REPLY = "They wrote again today from a new account, nightowl_42."


def _png(tmp_path: Path, name: str, seed: int) -> Path:
    path = tmp_path / name
    path.write_bytes(png_bytes(seed=seed))
    return path


def _gate(page: Any) -> str:
    text: str = page.locator("header.safety .danger").inner_text()
    return " ".join(text.split())


def _fill_report(page: Any, tmp_path: Path) -> None:
    page.get_by_label("I am a parent or carer").check()
    page.locator("#incident_types-sextortion").check()
    page.locator("#platform").fill("ExampleChat")
    page.locator("#suspect_usernames").fill("shadowfox_99")
    page.locator("#description").fill(DESCRIPTION)
    page.locator("#child_country").select_option("GB")
    page.locator("#reporter_country").select_option("GB")
    page.locator("#files").set_input_files(str(_png(tmp_path, "chat-screenshot.png", seed=3)))


def _submit_report(page: Any) -> Any:
    with page.expect_navigation() as navigation:
        page.locator("#send-report").click()
    return navigation.value


_BROKEN_LINKS = """() => [...document.querySelectorAll('#error-summary a[href^="#"]')]
  .map((a) => a.getAttribute('href'))
  .filter((href) => !document.getElementById(href.slice(1)))"""


def _sign_in(page: Any, server: Server, codename: str) -> Any:
    page.goto(server.url("/followup"))
    page.locator("#codename").fill(codename)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Sign in").click()
    return navigation.value


# ---------------------------------------------------------------- report and follow-up


@JS
def test_report_then_follow_up(server: Server, new_context: Any, tmp_path: Path,
                               javascript: bool) -> None:
    page = new_context(javascript=javascript).new_page()
    page.goto(server.url("/report"))

    assert "Is a child in immediate danger?" in _gate(page)
    assert "Call 999 now." in _gate(page)
    assert page.locator("#country-select").input_value() == "GB"
    # The threat questions are hidden by the script until they apply; without it they show.
    sextortion = page.locator("#sextortion-questions")
    assert sextortion.is_visible() is not javascript

    _fill_report(page, tmp_path)
    if javascript:
        assert sextortion.is_visible()
    page.locator("#sextortion_demands-money").check()
    page.screenshot(path=str(tmp_path / f"report-form-{javascript}.png"), full_page=True)

    answer = _submit_report(page)
    assert answer.status == 201
    reference = page.locator("#reference").inner_text().strip()
    codename = page.locator("#codename").inner_text().strip()
    assert reference
    assert len(codename.split()) == 7
    assert page.locator("#status").inner_text() == "Received"
    assert "1 file was stored safely." in page.locator("main").inner_text()
    page.screenshot(path=str(tmp_path / f"receipt-{javascript}.png"), full_page=True)

    stored = server.reports()
    assert [r["reference"] for r in stored] == [reference]
    assert stored[0]["incident_types"] == ["sextortion"]
    assert stored[0]["child_country"] == "GB"
    assert stored[0]["reporter_country"] == "GB"

    answer = _sign_in(page, server, codename)
    assert answer.status == 200
    assert page.url == server.url("/followup/report")
    assert reference in page.locator("h1").inner_text()
    assert page.locator("#status").inner_text() == "Received"
    assert "chat-screenshot.png" in page.locator("main").inner_text()

    page.locator("#body").fill(REPLY)
    page.locator("#files").set_input_files(str(_png(tmp_path, "new-account.png", seed=5)))
    with page.expect_navigation() as navigation:
        page.locator("#send-reply").click()
    assert navigation.value.status == 200
    assert page.locator("#notice").inner_text() == "Thank you: your message and files were added."
    assert page.locator("article.message.reporter").last.inner_text().count(REPLY) == 1
    files = page.locator("main ul li").all_inner_texts()
    assert any(item.startswith("new-account.png (") for item in files), files
    assert any(item.startswith("chat-screenshot.png (") for item in files), files
    # The box is empty again, so pressing Send twice does not send the message twice.
    assert page.locator("#body").input_value() == ""

    # Still there on a fresh load of the page.
    page.goto(server.url("/followup/report"))
    assert REPLY in page.locator("main").inner_text()
    assert "new-account.png" in page.locator("main").inner_text()


@JS
def test_missing_description_keeps_answers_and_stores_nothing(
    server: Server, new_context: Any, tmp_path: Path, javascript: bool
) -> None:
    page = new_context(javascript=javascript).new_page()
    page.goto(server.url("/report"))
    _fill_report(page, tmp_path)
    page.locator("#description").fill("")

    answer = _submit_report(page)

    assert answer.status == 422
    summary = page.locator("#error-summary")
    assert summary.is_visible()
    assert "Some answers need another look" in summary.inner_text()
    assert summary.locator("a[href='#description']").count() == 1
    assert page.locator("#description").get_attribute("aria-invalid") == "true"
    assert page.locator("#description-error").is_visible()
    # What was typed and ticked is still there.
    assert page.locator("#platform").input_value() == "ExampleChat"
    assert page.locator("#suspect_usernames").input_value() == "shadowfox_99"
    assert page.locator("#incident_types-sextortion").is_checked()
    assert page.get_by_label("I am a parent or carer").is_checked()
    assert page.locator("#child_country").input_value() == "GB"
    # The chosen file was dropped, and the page says so.
    assert "files you chose were not kept" in summary.inner_text()
    assert page.locator("#files").evaluate("input => input.files.length") == 0
    assert page.evaluate(_BROKEN_LINKS) == []
    # Following the link in the summary reaches the field.
    summary.locator("a[href='#description']").click()
    assert page.url.endswith("#description")

    assert server.cli("reports", "list", "--json").strip() == "[]"


def test_expired_form_keeps_answers_and_sends_on_the_second_try(
    server: Server, new_context: Any, tmp_path: Path
) -> None:
    context = new_context(javascript=False)
    page = context.new_page()
    page.goto(server.url("/report"))
    _fill_report(page, tmp_path)
    context.clear_cookies()  # as when the browser was closed and the tab restored

    answer = _submit_report(page)

    assert answer.status == 403
    summary = page.locator("#error-summary")
    assert "This form has expired" in summary.inner_text()
    assert page.evaluate(_BROKEN_LINKS) == []
    assert page.locator("#description").input_value() == DESCRIPTION
    assert page.locator("#incident_types-sextortion").is_checked()
    assert server.reports() == []

    assert _submit_report(page).status == 201
    assert page.locator("#codename").is_visible()
    assert len(server.reports()) == 1


# ---------------------------------------------------------------- signing in


def test_wrong_codename_answers_like_an_unknown_one(server: Server, new_context: Any,
                                                    tmp_path: Path) -> None:
    context = new_context(javascript=False)
    page = context.new_page()
    page.goto(server.url("/report"))
    _fill_report(page, tmp_path)
    _submit_report(page)
    words = page.locator("#codename").inner_text().split()
    wrong = " ".join([*words[:-1], "lantern" if words[-1] != "lantern" else "harbour"])
    unknown = "velvet otter seven quiet meadow copper lantern"

    errors = []
    for codename in (wrong, unknown):
        answer = _sign_in(page, server, codename)
        assert answer.status == 404
        assert page.url == server.url("/followup")
        errors.append(page.locator("#signin-error").inner_text())
        assert page.locator("#codename").input_value() == ""

    # The same words for a near miss and a codename nobody holds: the answer tells a
    # guesser nothing about the real one. (Single codename words can occur in the fixed
    # message by chance, "each" or "again", so the check is on pairs of words.)
    assert errors[0] == errors[1]
    assert errors[0]
    pairs = [" ".join(words[i:i + 2]) for i in range(len(words) - 1)]
    assert not [pair for pair in pairs if pair in errors[0].lower()]
    assert "tl_followup" not in {c["name"] for c in context.cookies()}
    answer = page.goto(server.url("/followup/report"))
    assert answer.status == 401
    assert page.locator("#status").count() == 0
    assert page.locator("#signin-error").is_visible()


# ---------------------------------------------------------------- quick exit


def test_quick_exit_replaces_the_history_entry(server: Server, new_context: Any) -> None:
    page = new_context(javascript=True).new_page()
    page.goto("data:text/html,<title>before</title><p>A page visited before.</p>")
    page.goto(server.url("/report"))

    with page.expect_navigation(url=server.exit_url):
        page.locator("#quick-exit").click()
    assert page.url == server.exit_url

    page.go_back()
    assert page.url.startswith("data:")
    assert not page.url.startswith(server.base_url)


def test_quick_exit_without_javascript_is_a_plain_link(server: Server, new_context: Any) -> None:
    page = new_context(javascript=False).new_page()
    page.goto(server.url("/report"))
    exit_link = page.locator("#quick-exit")
    assert exit_link.is_visible()
    assert exit_link.get_attribute("href") == server.exit_url

    with page.expect_navigation(url=server.exit_url):
        exit_link.click()
    assert page.url == server.exit_url


def test_escape_twice_leaves_and_once_does_not(server: Server, new_context: Any) -> None:
    page = new_context(javascript=True).new_page()
    page.goto("data:text/html,<p>A page visited before.</p>")
    page.goto(server.url("/report"))
    page.locator("#platform").fill("ExampleChat")

    page.keyboard.press("Escape")
    page.wait_for_timeout(1000)
    assert page.url == server.url("/report")
    page.keyboard.press("Escape")
    page.wait_for_timeout(1000)
    assert page.url == server.url("/report"), "two presses a second apart are not a double press"

    with page.expect_navigation(url=server.exit_url):
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")
    page.go_back()
    assert not page.url.startswith(server.base_url)


# ---------------------------------------------------------------- country selector


@JS
def test_country_selector_changes_the_numbers_and_is_remembered(
    server: Server, new_context: Any, javascript: bool
) -> None:
    page = new_context(javascript=javascript).new_page()
    page.goto(server.url("/report"))
    assert "Call 999 now." in _gate(page)

    with page.expect_navigation(url=server.url("/report")):
        page.locator("#country-select").select_option("AU")
        if not javascript:  # With the script, choosing is enough.
            page.get_by_role("button", name="Show my numbers").click()

    assert "Call 000 now." in _gate(page)
    assert "Australia" in _gate(page)
    assert page.locator("#country-select").input_value() == "AU"
    assert page.locator("#reporter_country").input_value() == "AU"

    page.goto(server.url("/followup"))
    assert "Call 000 now." in _gate(page)
    assert page.locator("#country-select").input_value() == "AU"


# ---------------------------------------------------------------- small screens

_UNLABELLED = """() => {
  const seen = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const named = (el) => {
    const texts = [...(el.labels || [])].map((l) => l.textContent.trim());
    texts.push((el.getAttribute('aria-label') || '').trim());
    for (const id of (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)) {
      const ref = document.getElementById(id);
      texts.push(ref ? ref.textContent.trim() : '');
    }
    return texts.some((t) => t.length > 0);
  };
  return [...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && seen(el) && !named(el))
    .map((el) => el.outerHTML.slice(0, 120));
}"""

_VISIBLE_FIELDS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0).length"""


@JS
@pytest.mark.parametrize("path", ["/report", "/followup", "/"])
def test_small_screen_no_sideways_scroll_and_labelled_fields(
    server: Server, new_context: Any, tmp_path: Path, javascript: bool, path: str
) -> None:
    context = new_context(javascript=javascript, viewport={"width": 375, "height": 667},
                          is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server.url(path))
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)

    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"{path} scrolls sideways on a phone: {width}px wide"
    assert page.evaluate(_VISIBLE_FIELDS) > 0
    assert page.evaluate(_UNLABELLED) == []
    assert page.locator("#quick-exit").is_visible()
    if path == "/report":
        # The safety banner must not push the form off the first screen.
        first = page.locator("#reporter_role-group legend").bounding_box()
        assert first is not None
        assert first["y"] + first["height"] <= 667, f"the first question starts at {first['y']}px"


def test_small_screen_error_page_fits(server: Server, new_context: Any) -> None:
    page = new_context(javascript=False, viewport={"width": 375, "height": 667}).new_page()
    page.goto(server.url("/report"))
    page.locator("#platform").fill("https://chat.example.org/a/very/long/path/without/any/breaks/at/all")
    _submit_report(page)
    assert page.locator("#error-summary").is_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the error page scrolls sideways on a phone: {width}px wide"
    assert page.evaluate(_UNLABELLED) == []
