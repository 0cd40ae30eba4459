"""Offline IP address → country, as a routing hint (domain.md §4.6).

The data is the MaxMind GeoLite2-Country snapshot bundled with the `geoip2fast` package
(IPv4 and IPv6 file). It is a hint, never authoritative: VPNs, proxies, carrier NAT, anycast
and cloud egress all break it, and the bundled snapshot is old; every answer therefore
carries the database it came from and that database's date. The file is read lazily, once
per process (about 0.1 s and some 30 MB), on the first lookup; later lookups take
microseconds. No network access ever happens here.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DATA_FILE = "geoip2fast-ipv6.dat.gz"  # IPv4 and IPv6; bundled with the package
_SOURCE = re.compile(r"^(?P<vendor>[A-Z]+):(?P<name>[A-Za-z0-9]+)-.*-(?P<date>\d{8})$")


@dataclass(frozen=True)
class Hint:
    country: str  # ISO 3166-1 alpha-2
    database: str  # e.g. "geoip2fast GeoLite2-Country 2024-06-18"
    database_date: str  # ISO date of the data snapshot


class _Database:
    def __init__(self, data_file: str | Path) -> None:
        from geoip2fast import GeoIP2Fast  # type: ignore[import-untyped]  # (no type hints shipped)

        self._reader: Any = GeoIP2Fast(verbose=False, geoip2fast_data_file=str(data_file))
        source = str(self._reader.get_database_info().get("source_info", ""))
        match = _SOURCE.match(source)
        if match:
            day = match["date"]
            self.date = f"{day[:4]}-{day[4:6]}-{day[6:]}"
            self.name = f"geoip2fast {match['name']} {self.date}"
        else:
            self.date, self.name = "", f"geoip2fast {source or 'unknown data'}"

    def country(self, address: str) -> str | None:
        result = self._reader.lookup(address)
        code = str(getattr(result, "country_code", "") or "")
        if getattr(result, "is_private", False) or len(code) != 2 or not code.isalpha():
            return None
        return code.upper()


_lock = threading.Lock()
_loaded: dict[str, _Database] = {}


def _database(data_file: str | Path | None) -> _Database:
    key = str(data_file or DEFAULT_DATA_FILE)
    found = _loaded.get(key)
    if found is None:
        with _lock:
            found = _loaded.get(key)
            if found is None:
                found = _loaded[key] = _Database(key)
    return found


def warm(data_file: str | Path | None = None) -> None:
    """Load the database now (a partner server does this in the background at start-up), so
    that the first finished report does not wait for it."""
    _database(data_file)


def lookup(ip: str, *, data_file: str | Path | None = None) -> Hint | None:
    """The country an address is registered to in the offline database, or None for a
    private, reserved, documentation or unknown address, or text that is not an address.
    `data_file`: a geoip2fast `.dat.gz` file (default: the bundled IPv4+IPv6 GeoLite2 file)."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if not address.is_global:  # private, loopback, link-local, documentation ranges...
        return None
    database = _database(data_file)
    country = database.country(str(address))
    return Hint(country, database.name, database.date) if country else None
