"""Translation of every user-facing string. The locale is chosen per request and kept in a
context variable, so services and templates share one gettext."""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache
from importlib import resources
from pathlib import Path

from babel.support import NullTranslations, Translations

DEFAULT_LOCALE = "en"
# A pseudo-locale that wraps every translated string in ⟦ ⟧, so translators and tests can
# see at a glance any text that does not go through gettext.
PSEUDO_LOCALE = "qps"
# The default is never mutated: translations are read-only once loaded.
_current: ContextVar[NullTranslations] = ContextVar("translations", default=NullTranslations())  # noqa: B039


def locale_dir() -> Path:
    return Path(str(resources.files("tipline") / "locale"))


class PseudoTranslations(NullTranslations):
    def ugettext(self, message: str) -> str:
        return f"⟦{message}⟧"

    def ungettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return f"⟦{msgid1 if n == 1 else msgid2}⟧"

    gettext = ugettext
    ngettext = ungettext


@cache
def available_locales() -> tuple[str, ...]:
    found = {DEFAULT_LOCALE, PSEUDO_LOCALE}
    folder = locale_dir()
    if folder.exists():
        found.update(p.name for p in folder.iterdir() if (p / "LC_MESSAGES" / "messages.mo").exists())
    return tuple(sorted(found))


@cache
def translations_for(locale: str) -> NullTranslations:
    if locale == PSEUDO_LOCALE:
        return PseudoTranslations()
    if locale == DEFAULT_LOCALE or locale not in available_locales():
        return NullTranslations()
    return Translations.load(str(locale_dir()), [locale])


_current_locale: ContextVar[str] = ContextVar("locale", default=DEFAULT_LOCALE)


def activate(locale: str) -> None:
    _current.set(translations_for(locale))
    _current_locale.set(locale if locale in available_locales() else DEFAULT_LOCALE)


def current_locale() -> str:
    return _current_locale.get()


def gettext(message: str) -> str:
    return _current.get().ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.get().ungettext(singular, plural, n)


_ = gettext
