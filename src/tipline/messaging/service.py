"""The anonymous two-way channel between a reporter and the people handling the report."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline import clock, crypto
from tipline.audit import service as audit
from tipline.errors import InvalidInput
from tipline.messaging.enums import Author
from tipline.messaging.models import ReportMessage

CONTEXT = b"tipline:message"


def _key(keys: crypto.Keys) -> bytes:
    return keys.derive("messages")


@dataclass(frozen=True)
class MessageView:
    id: uuid.UUID
    author: Author
    author_label: str
    body: str
    created_at: datetime


def post_message(
    session: Session,
    keys: crypto.Keys,
    *,
    report_id: uuid.UUID,
    author: Author,
    author_label: str,
    body: str,
    actor: str,
    max_chars: int,
) -> ReportMessage:
    text = body.strip()
    if len(text) > max_chars:
        raise InvalidInput(f"The message is longer than {max_chars} characters.", field="body")
    message = ReportMessage(
        report_id=report_id, author=author, author_label=author_label,
        body_sealed=crypto.seal(_key(keys), text.encode(), CONTEXT + report_id.bytes),
        created_at=clock.now(),
    )
    session.add(message)
    session.flush()
    # The audit row names the message, never its content.
    audit.record(session, actor=actor, action="message.post", object_type="report",
                 object_id=str(report_id), details={"message": str(message.id), "author": author.value})
    return message


def list_messages(session: Session, keys: crypto.Keys, report_id: uuid.UUID, *,
                  include_internal: bool = False) -> list[MessageView]:
    query = select(ReportMessage).where(ReportMessage.report_id == report_id)
    if not include_internal:
        query = query.where(ReportMessage.author != Author.internal)
    rows = session.execute(query.order_by(ReportMessage.created_at, ReportMessage.id)).scalars()
    return [
        MessageView(
            id=row.id, author=row.author, author_label=row.author_label,
            body=crypto.unseal(_key(keys), row.body_sealed, CONTEXT + report_id.bytes).decode(),
            created_at=row.created_at,
        )
        for row in rows
    ]
