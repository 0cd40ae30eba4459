from __future__ import annotations

from enum import StrEnum


class Author(StrEnum):
    reporter = "reporter"
    staff = "staff"
