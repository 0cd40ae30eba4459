"""Translation of every user-facing string. The locale is chosen per request and kept in a
context variable, so services and templates share one gettext."""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache
from importlib import resources
from pathlib import Path

from babel.support import NullTranslations, Translations

DEFAULT_LOCALE = "en"
_current: ContextVar[NullTranslations] = ContextVar("translations", default=NullTranslations())


def locale_dir() -> Path:
    return Path(str(resources.files("tipline") / "locale"))


@cache
def available_locales() -> tuple[str, ...]:
    found = {DEFAULT_LOCALE}
    folder = locale_dir()
    if folder.exists():
        found.update(p.name for p in folder.iterdir() if (p / "LC_MESSAGES" / "messages.mo").exists())
    return tuple(sorted(found))


@cache
def translations_for(locale: str) -> NullTranslations:
    if locale == DEFAULT_LOCALE or locale not in available_locales():
        return NullTranslations()
    return Translations.load(str(locale_dir()), [locale])


def activate(locale: str) -> None:
    _current.set(translations_for(locale))


def gettext(message: str) -> str:
    return _current.get().ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.get().ungettext(singular, plural, n)


_ = gettext
