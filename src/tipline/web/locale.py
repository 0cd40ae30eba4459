"""Language and country of a visitor, from what the browser says; never from the IP."""

from __future__ import annotations

from fastapi import Request

from tipline import i18n
from tipline.reports.schemas import COUNTRY_CODES

COUNTRY_COOKIE = "tl_country"


def _accept_language(header: str) -> list[str]:
    tags: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        tags.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(tags)]


def country_from_language(header: str) -> str:
    for tag in _accept_language(header):
        parts = tag.replace("_", "-").split("-")
        for sub in parts[1:]:
            if len(sub) == 2 and sub.upper() in COUNTRY_CODES:
                return sub.upper()
    return ""


def locale_from_language(header: str) -> str:
    available = i18n.available_locales()
    for tag in _accept_language(header):
        base = tag.split("-")[0].lower()
        if base in available:
            return base
    return i18n.DEFAULT_LOCALE


def visitor_country(request: Request, default: str) -> str:
    chosen = request.cookies.get(COUNTRY_COOKIE, "").upper()
    if chosen in COUNTRY_CODES:
        return chosen
    return country_from_language(request.headers.get("accept-language", "")) or default
