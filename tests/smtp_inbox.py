"""A real local SMTP server (aiosmtpd) that keeps what it receives, for mail tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.serverproc import free_port


@dataclass
class Inbox:
    messages: list[tuple[list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def wait_for(self, count: int, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.messages) >= count, f"{len(self.messages)} e-mails arrived, {count} expected"


@contextmanager
def smtp_server(monkeypatch: pytest.MonkeyPatch, link_base: str = "") -> Iterator[Inbox]:
    """Start the server and point TIPLINE_SMTP_* at it (for this process and its children)."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("TIPLINE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TIPLINE_SMTP_PORT", str(port))
    monkeypatch.setenv("TIPLINE_SMTP_FROM", "tipline@example.org")
    if link_base:
        monkeypatch.setenv("TIPLINE_SMTP_LINK_BASE", link_base)
    try:
        yield inbox
    finally:
        controller.stop()
