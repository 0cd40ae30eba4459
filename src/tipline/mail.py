"""Sending e-mail notices over SMTP (standard library only).

Settings come from TIPLINE_SMTP_* environment variables. With no host configured, nothing
is sent and `send` raises MailNotConfigured, which callers record like any other failure.
Notices never carry report content: callers pass only references and links.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MailSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIPLINE_SMTP_", frozen=True, extra="ignore",
                                      populate_by_name=True)

    host: str = ""
    port: int = Field(default=25, ge=1, le=65535)
    # TIPLINE_SMTP_FROM: the sender address of every notice.
    sender: str = Field(default="", validation_alias="TIPLINE_SMTP_FROM")
    starttls: bool = False
    user: str = ""
    password: str = ""
    timeout_seconds: float = Field(default=20.0, gt=0)
    # The staff site's address for links in notices (e.g. https://tipline.example.org);
    # empty means the address the request came in on.
    link_base: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.host and self.sender)


class MailError(Exception):
    """A notice could not be handed to the SMTP server."""


class MailNotConfigured(MailError):
    """No SMTP host or sender address is set."""


def build_message(settings: MailSettings, *, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    message.set_content(body)
    return message


def send(settings: MailSettings, *, to: list[str], subject: str, body: str) -> None:
    """Send one message to each recipient (recipients never see each other's addresses).
    Raises MailError when the server cannot be reached or refuses any recipient."""
    if not settings.configured:
        raise MailNotConfigured("no SMTP host or sender address is configured (TIPLINE_SMTP_HOST, TIPLINE_SMTP_FROM)")
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.user:
                smtp.login(settings.user, settings.password)
            for address in to:
                smtp.send_message(build_message(settings, to=address, subject=subject, body=body))
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from exc
