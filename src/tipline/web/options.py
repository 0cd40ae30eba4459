"""Pre-rendered <option> lists for the long country selects."""

from __future__ import annotations

from markupsafe import Markup, escape

_OPTIONS_CACHE: dict[tuple[tuple[str, str], ...], Markup] = {}


def country_options(countries: list[tuple[str, str]], selected: str | None) -> Markup:
    """All <option>s of a country list. Rendering ~250 options in a Jinja loop costs a few
    milliseconds each time, and most pages have three lists; the HTML is built once per
    language and only the selected flag is set per request."""
    key = tuple(countries)
    html = _OPTIONS_CACHE.get(key)
    if html is None:
        html = Markup("").join(
            Markup('<option value="{0}">{1}</option>').format(code, name) for code, name in countries)
        _OPTIONS_CACHE[key] = html
    if selected:
        needle = f'<option value="{escape(selected)}">'
        # Both parts are already escaped HTML: the cached options and the escaped code.
        html = Markup(str(html).replace(needle, needle[:-1] + " selected>", 1))  # noqa: S704
    return html
