"""The staff fixtures (real accounts, password + TOTP sign-in through the pages)."""

from __future__ import annotations

from tests.staff.conftest import staff_client

__all__ = ["staff_client"]
