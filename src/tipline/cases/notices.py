"""E-mail notices to agencies, sent after the referral has committed.

A failure to send is logged and recorded as a case event ("notice_failed"); it never undoes
the referral, which the agency also sees on its case list.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline import mail
from tipline.accounts.models import Agency, User
from tipline.accounts.permissions import Role
from tipline.cases import service as cases
from tipline.cases.models import Referral
from tipline.context import AppContext
from tipline.db import transaction
from tipline.errors import NotFound
from tipline.i18n import _
from tipline.reports.models import Report

logger = logging.getLogger(__name__)


def notice_recipients(session: Session, agency_id: uuid.UUID) -> list[str]:
    """The agency's officers and its notification address, each once."""
    agency = session.get(Agency, agency_id)
    addresses = list(session.execute(
        select(User.email).where(User.agency_id == agency_id, User.active.is_(True),
                                 User.role == Role.agency_officer).order_by(User.email)).scalars())
    if agency is not None and agency.notify_email:
        addresses.append(agency.notify_email.strip().lower())
    return list(dict.fromkeys(addresses))


@dataclass(frozen=True)
class Notice:
    referral_id: uuid.UUID
    recipients: list[str]
    subject: str
    body: str


def referral_notice(session: Session, referral_id: uuid.UUID, *, site_name: str, link_base: str) -> Notice:
    """The e-mail telling an agency about a new referral: the reference and a link, never
    anything the reporter wrote."""
    referral = session.get(Referral, referral_id)
    if referral is None:
        raise NotFound(_("There is no page at this address."))
    report = session.get(Report, referral.report_id)
    assert report is not None
    agency = session.get(Agency, referral.agency_id)
    link = f"{link_base.rstrip('/')}/staff/cases/{referral.id}"
    subject = _("[%(site)s] New referral %(ref)s") % {"site": site_name, "ref": report.reference}
    body = _(
        "A report has been referred to %(agency)s through %(site)s.\n\n"
        "Reference: %(ref)s\n\n"
        "Sign in to read it and to accept or decline the referral:\n%(link)s\n\n"
        "For the safety of the people involved, this message contains no details of the report."
    ) % {"agency": agency.name if agency else "", "site": site_name, "ref": report.reference, "link": link}
    return Notice(referral.id, notice_recipients(session, referral.agency_id), subject, body)


def send_referral_notices(ctx: AppContext, settings: mail.MailSettings,
                          referral_ids: list[uuid.UUID], link_base: str) -> None:
    for referral_id in referral_ids:
        with ctx.sessions() as session:
            notice = referral_notice(session, referral_id, site_name=ctx.settings.site_name,
                                           link_base=settings.link_base or link_base)
        details: dict[str, Any]
        try:
            if not notice.recipients:
                raise mail.MailError("the agency has no officer account and no notification address")
            mail.send(settings, to=notice.recipients, subject=notice.subject, body=notice.body)
        except mail.MailError as exc:
            logger.warning("referral notice for %s was not sent: %s", referral_id, exc)
            kind, details = "notice_failed", {"error": str(exc)[:500]}
        else:
            kind, details = "notified", {"recipients": notice.recipients}
        with transaction(ctx.sessions) as session:
            cases.record_event(session, referral_id, kind, "system", details)
