"""Identifiers in a report (e-mails, phones, URLs, usernames, IP addresses), normalised so
that the same person or account written two ways compares equal.

Pure functions: no database, no I/O. Each `normalise_*` returns the normalised value, or
None when the input is not an identifier of that kind (junk is dropped, never guessed at).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

import phonenumbers

MAX_VALUE = 512  # the column's length; a longer value cannot be stored, so it is not kept
MAX_RAW = 2048


class IdentifierKind(StrEnum):
    email = "email"
    phone = "phone"
    url = "url"
    username = "username"
    ip = "ip"


@dataclass(frozen=True)
class Identifier:
    kind: IdentifierKind
    value: str
    raw: str


# --- e-mail ---------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[a-z0-9._%+\-]{1,64}@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL_IN_TEXT = re.compile(
    r"(?<![\w.%+\-])[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.)+[A-Za-z]{2,63}(?![\w\-@])"
)


def normalise_email(raw: str) -> str | None:
    """Lower case throughout: providers treat the local part case-insensitively in practice.
    Sub-addresses (+tag) and dots are kept: dropping them is right for some providers only."""
    text = raw.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    local, at, domain = text.rpartition("@")
    if not at:
        return None
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return None
    value = f"{local}@{domain}".lower()
    return value if len(value) <= 254 and _EMAIL.match(value) else None


# --- phone ----------------------------------------------------------------------------------

def normalise_phone(raw: str, default_region: str | None = None) -> str | None:
    """E.164. National formats need the region they were written in; "00" works anywhere."""
    text = raw.strip()
    default_region = default_region.upper() if default_region else None
    if default_region is None and text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phone_in_regions(raw: str, regions: Iterable[str | None]) -> str | None:
    for region in regions:
        found = normalise_phone(raw, region)
        if found:
            return found
    return None


_INTERNATIONAL_00 = re.compile(r"(?<![\d+])00(?=[1-9])")


# A plus sign, a few separators at most, then a digit: where an international number can start.
_PLUS_THEN_DIGIT = re.compile(r"[+\uff0b]\D{0,8}?(\d)")


def _may_be_international(text: str) -> bool:
    """Without a region, only numbers written with a country code can be read, and no
    country code starts with 0. Timestamps ("+00:00") and plain text skip the matcher,
    which costs half a millisecond a call even when it finds nothing."""
    return any(int(match.group(1)) != 0 for match in _PLUS_THEN_DIGIT.finditer(text))


def phones_in_text(text: str, regions: Sequence[str | None]) -> Iterator[tuple[str, str]]:
    """(raw, E.164) for each valid number, read as written in each region in turn and then
    with "00" as the international prefix (as most of the world dials). phonenumbers' own
    matcher is stricter than any regex of ours about dates, times and reference numbers."""
    attempts: list[tuple[str, str | None]] = [(text, region) for region in regions if region]
    # "+ " for "00" keeps every offset, so the raw text is still the reporter's own.
    international = _INTERNATIONAL_00.sub("+ ", text)
    if _may_be_international(international):
        attempts.append((international, None))
    for source, region in attempts:
        for match in phonenumbers.PhoneNumberMatcher(source, region, leniency=phonenumbers.Leniency.VALID):
            raw = text[match.start:match.end].strip()
            yield raw, phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)


# --- IP addresses ---------------------------------------------------------------------------

def normalise_ip(raw: str) -> str | None:
    """Canonical text (IPv6 compressed); an IPv4 address written as IPv6-mapped is IPv4."""
    text = raw.strip().strip("[]")
    if text.count(":") == 1 and "." in text:  # "192.0.2.1:8080": the port is not part of it
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


_PRIVATE = tuple(ipaddress.ip_network(net) for net in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
    "169.254.0.0/16", "fc00::/7", "fe80::/10", "::1/128",
))


def ip_scope(value: str) -> str:
    """"private", "reserved" or "" (public): shown next to the address, since a shared
    private address (a home router) says little about who someone is."""
    address = ipaddress.ip_address(value)
    if any(address in net for net in _PRIVATE):
        return "private"
    return "" if address.is_global else "reserved"


# --- platforms and usernames ----------------------------------------------------------------

# Names people write for a platform -> one key. Anything else becomes a plain slug.
_PLATFORM_ALIASES = {
    "twitter": "x", "x": "x", "xtwitter": "x", "twitterx": "x", "xcom": "x",
    "instagram": "instagram", "insta": "instagram", "ig": "instagram",
    "facebook": "facebook", "fb": "facebook", "messenger": "facebook", "facebookmessenger": "facebook",
    "tiktok": "tiktok", "snapchat": "snapchat", "snap": "snapchat",
    "youtube": "youtube", "yt": "youtube", "reddit": "reddit", "twitch": "twitch",
    "telegram": "telegram", "threads": "threads", "discord": "discord", "roblox": "roblox",
    "whatsapp": "whatsapp", "kik": "kik", "omegle": "omegle",
}
# Hosts of platforms whose profile URLs we reduce to platform:username.
_PLATFORM_HOSTS = {
    "instagram.com": "instagram", "tiktok.com": "tiktok", "twitter.com": "x", "x.com": "x",
    "facebook.com": "facebook", "fb.com": "facebook", "snapchat.com": "snapchat",
    "youtube.com": "youtube", "reddit.com": "reddit", "old.reddit.com": "reddit",
    "twitch.tv": "twitch", "t.me": "telegram", "telegram.me": "telegram",
    "threads.net": "threads", "threads.com": "threads",
}
# Other names of the same sites: one host in the canonical URL.
_HOST_ALIASES = {"twitter.com": "x.com", "fb.com": "facebook.com", "telegram.me": "t.me",
                 "threads.com": "threads.net", "old.reddit.com": "reddit.com"}
# Mobile hosts of those platforms show the same pages.
_MOBILE_PREFIXES = ("m.", "mobile.")
# First path segments that are site pages, not usernames.
_NOT_PROFILES = frozenset({
    "p", "reel", "reels", "explore", "stories", "tv", "accounts", "about", "legal", "help",
    "i", "home", "search", "intent", "share", "hashtag", "settings", "login", "signup",
    "watch", "channel", "c", "results", "feed", "groups", "events", "pages", "photo",
    "photo.php", "permalink.php", "story.php", "watch.php", "video", "tag", "discover",
    "joinchat", "s", "messages", "notifications", "r", "privacy", "terms", "directory",
})
_USERNAME = re.compile(r"^[\w.\-]{1,100}$")


def normalise_platform(raw: str) -> str:
    """"Instagram", "insta", "www.instagram.com" -> "instagram"; other names -> a slug."""
    text = raw.strip().lower()
    try:
        host = _bare_host(urlsplit(text if "://" in text else f"//{text}").hostname or "")
    except ValueError:  # not a host at all, just a name
        host = ""
    if host in _PLATFORM_HOSTS:
        return _PLATFORM_HOSTS[host]
    slug = re.sub(r"[^\w]+", "", text)
    return _PLATFORM_ALIASES.get(slug, slug)[:60]


def normalise_username(platform: str, raw: str) -> str | None:
    """"platform:username", lower case. A username means nothing without its platform, so
    none is returned when the platform is not known."""
    key = normalise_platform(platform)
    name = raw.strip().lstrip("@").strip().lower()
    if not key or not name or len(name) > 100 or not any(c.isalnum() for c in name):
        return None
    name = re.sub(r"\s+", " ", name)
    value = f"{key}:{name}"
    return value if len(value) <= MAX_VALUE else None


def _bare_host(host: str) -> str:
    host = host.rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    for prefix in _MOBILE_PREFIXES:
        if host.startswith(prefix) and host[len(prefix):] in _PLATFORM_HOSTS:
            host = host[len(prefix):]
    return _HOST_ALIASES.get(host, host)


# --- URLs -----------------------------------------------------------------------------------

_TRACKING = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|igshid|igsh|si|"
    r"ref_src|ref_url|_ga|_gl|yclid|twclid|ttclid|s_cid|mkt_tok)$",
    re.IGNORECASE,
)
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9\-]{1,62}$")
_URL_IN_TEXT = re.compile(r"(?:\bhxxps?|\bhttps?)://[^\s<>\"'`]+|\bwww\.[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def _undefang(text: str) -> str:
    """Reports often write links defanged ("hxxp://example[.]org") so nobody clicks them."""
    text = re.sub(r"^hxxp", "http", text, flags=re.IGNORECASE)
    return text.replace("[.]", ".").replace("(.)", ".").replace("[:]", ":")


def _canonical_host(host: str) -> str | None:
    ip = normalise_ip(host)
    if ip is not None:
        return f"[{ip}]" if ":" in ip else ip
    try:
        host = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    host = _bare_host(host)
    return host if len(host) <= 253 and _HOST.match(host) else None


def _canonical_port(scheme: str, port: int | None) -> str:
    default = {"http": 80, "https": 443}[scheme]
    return "" if port in (None, default) else f":{port}"


def _canonical_query(query: str) -> str:
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not _TRACKING.match(k)]
    return urlencode(sorted(pairs))


def normalise_url(raw: str) -> str | None:
    """One form per page: https, lower-case host without "www." (or "m." on the big
    platforms), no default port, user info, fragment, tracking parameters or trailing
    slash; the other parameters sorted. http and https count as the same page."""
    text = _undefang(raw.strip().lstrip("<").rstrip(_TRAILING + ">"))
    if not re.match(r"^[a-z][a-z0-9+.\-]*://", text, re.IGNORECASE):
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        return None
    host = _canonical_host(parts.hostname)
    if host is None:
        return None
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    if host in _PLATFORM_HOSTS:
        path = path.lower()  # these platforms' profile paths are case-insensitive
    query = _canonical_query(parts.query)
    value = f"https://{host}{_canonical_port(scheme, port)}{path}" + (f"?{query}" if query else "")
    return value if len(value) <= MAX_VALUE else None


def profile_username(url: str) -> str | None:
    """"platform:username" for a profile URL of a well-known platform (given normalised)."""
    parts = urlsplit(url)
    platform = _PLATFORM_HOSTS.get(parts.hostname or "")
    segments = [s for s in parts.path.split("/") if s]
    if platform is None or not segments:
        return None
    if platform == "facebook" and segments == ["profile.php"]:
        ids = dict(parse_qsl(parts.query)).get("id", "")
        return f"facebook:{ids}" if ids.isdigit() else None
    name = _profile_segment(platform, segments)
    if name is None or name in _NOT_PROFILES or not _USERNAME.match(name):
        return None
    return normalise_username(platform, name)


def _profile_segment(platform: str, segments: list[str]) -> str | None:
    first = segments[0]
    if platform == "reddit":
        return segments[1] if len(segments) > 1 and first in ("u", "user") else None
    if platform == "snapchat":
        return segments[1] if len(segments) > 1 and first == "add" else None
    if platform in ("tiktok", "youtube", "threads"):
        return first[1:] if first.startswith("@") else None
    return first.lstrip("@")


def is_platform_home(url: str) -> bool:
    """A platform's front page links every report that names the platform: not evidence."""
    parts = urlsplit(url)
    return (parts.hostname or "") in _PLATFORM_HOSTS and not parts.path.strip("/")


# --- extraction -----------------------------------------------------------------------------

class ReportLike(Protocol):
    platform: str
    urls: list[str]
    suspect: dict[str, Any]
    description: str
    child_country: str | None
    reporter_country: str | None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _from_url(raw: str) -> list[Identifier]:
    url = normalise_url(raw)
    if url is None or is_platform_home(url):
        return []
    found = [Identifier(IdentifierKind.url, url, raw)]
    username = profile_username(url)
    if username:
        found.append(Identifier(IdentifierKind.username, username, raw))
    ip = normalise_ip(urlsplit(url).hostname or "")
    if ip:
        found.append(Identifier(IdentifierKind.ip, ip, raw))
    return found


def _from_username(platform: str, raw: str) -> list[Identifier]:
    """The username box gets links, addresses and IPs too; take each for what it is."""
    text = raw.strip()
    if "://" in text or text.lower().startswith("www."):
        return _from_url(text)
    email = normalise_email(text) if "@" in text[1:] else None
    if email:
        return [Identifier(IdentifierKind.email, email, raw)]
    ip = normalise_ip(text)
    if ip:
        return [Identifier(IdentifierKind.ip, ip, raw)]
    username = normalise_username(platform, text)
    return [Identifier(IdentifierKind.username, username, raw)] if username else []


def _from_text(text: str, regions: Sequence[str | None]) -> list[Identifier]:
    found: list[Identifier] = []
    for match in _EMAIL_IN_TEXT.finditer(text):
        email = normalise_email(match.group())
        if email:
            found.append(Identifier(IdentifierKind.email, email, match.group()))
    for match in _URL_IN_TEXT.finditer(text):
        found.extend(_from_url(match.group().rstrip(_TRAILING)))
    # Digits inside e-mail addresses and links are not phone numbers.
    rest = _URL_IN_TEXT.sub(" ", _EMAIL_IN_TEXT.sub(" ", text))
    found.extend(Identifier(IdentifierKind.phone, e164, raw) for raw, e164 in phones_in_text(rest, regions))
    return found


def _party_identifiers(platform: str, party: dict[str, Any], regions: list[str | None]) -> Iterator[Identifier]:
    """Identifiers of one person: the suspect, or another party a partner named (a victim,
    an intended recipient), whose keys follow the partner API's names."""
    for raw in _strings(party.get("usernames")) + _strings(party.get("screen_names")):
        yield from _from_username(platform, raw)
    for raw in _strings(party.get("profile_links")) + _strings(party.get("profile_urls")):
        yield from _from_url(raw)
    for raw in _strings(party.get("emails")):
        email = normalise_email(raw)
        if email:
            yield Identifier(IdentifierKind.email, email, raw)
    for raw in _strings(party.get("phones")):
        phone = _phone_in_regions(raw, regions)
        if phone:
            yield Identifier(IdentifierKind.phone, phone, raw)
    for text in _strings(party.get("details")):
        yield from _from_text(text, regions)


def _suspect_identifiers(report: ReportLike, regions: list[str | None]) -> Iterator[Identifier]:
    suspect = report.suspect or {}
    yield from _party_identifiers(report.platform, suspect, regions)
    others = suspect.get("other_parties")
    for party in others if isinstance(others, list) else []:
        if isinstance(party, dict):
            yield from _party_identifiers(report.platform, party, regions)


def extract(report: ReportLike) -> list[Identifier]:
    """Every identifier in a report, once each (the first way it was written is kept)."""
    # Numbers are written the way the child or the reporter would dial them.
    regions: list[str | None] = [r for r in (report.child_country, report.reporter_country) if r]
    regions.append(None)
    found: list[Identifier] = []
    for raw in _strings(report.urls):
        found.extend(_from_url(raw))
    found.extend(_suspect_identifiers(report, regions))
    found.extend(_from_text(report.description or "", regions))
    unique: dict[tuple[IdentifierKind, str], Identifier] = {}
    for item in found:
        unique.setdefault((item.kind, item.value), Identifier(item.kind, item.value, item.raw[:MAX_RAW]))
    return list(unique.values())


def describe(kind: IdentifierKind | str, value: str) -> str:
    """What an analyst reads: "email: a@example.org", "username: quietowl (pixelplay)"."""
    kind = IdentifierKind(kind)
    if kind == IdentifierKind.username:
        platform, _, name = value.partition(":")
        return f"username: {name} ({platform})"
    if kind == IdentifierKind.ip:
        scope = ip_scope(value)
        return f"ip: {value}" + (f" ({scope})" if scope else "")
    return f"{kind.value}: {value}"
