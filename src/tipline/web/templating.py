"""The one Jinja environment, with gettext installed for every template."""

from __future__ import annotations

from functools import cache
from importlib import resources

from jinja2 import Environment, FileSystemLoader, select_autoescape

from tipline import i18n
from tipline.reports import labels
from tipline.web.options import country_options


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(resources.files("tipline") / "web" / "templates")),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship inside the package; checking their files at every render is waste.
        auto_reload=False,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["country_options"] = country_options
    env.globals["label"] = labels.label
    return env
