"""Triage fixtures."""

from __future__ import annotations

from tests.staff.conftest import staff_client  # noqa: F401 (the signed-in staff fixture)
