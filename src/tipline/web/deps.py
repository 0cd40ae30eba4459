"""Request dependencies shared by every surface."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from tipline.context import AppContext
from tipline.db import transaction


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request; it commits before the response is sent (declare it with
    `Depends(get_session, scope="function")`)."""
    with transaction(get_ctx(request).sessions) as session:
        yield session


def client_key(request: Request) -> str:
    """Identity for rate limiting only; never stored."""
    return request.client.host if request.client else "unknown"
