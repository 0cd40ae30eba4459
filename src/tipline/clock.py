"""The one source of the current time, so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime

_offset_seconds = 0.0


def now() -> datetime:
    """Aware UTC now (plus any offset a test has set)."""
    from datetime import timedelta

    return datetime.now(UTC) + timedelta(seconds=_offset_seconds)


def advance(seconds: float) -> None:
    """Move the clock forward (tests only)."""
    global _offset_seconds  # noqa: PLW0603 - a single process-wide test offset is the point
    _offset_seconds += seconds


def reset() -> None:
    global _offset_seconds  # noqa: PLW0603
    _offset_seconds = 0.0
