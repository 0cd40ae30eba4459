from __future__ import annotations

from enum import StrEnum


class Author(StrEnum):
    reporter = "reporter"
    staff = "staff"
    # A note between staff: never shown to the reporter.
    internal = "internal"
