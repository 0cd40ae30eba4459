"""Domain errors. Services raise these; web/ maps them to HTML, JSON or XML once."""

from __future__ import annotations


class TiplineError(Exception):
    """Base class; `message` is safe to show to the person who caused it."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(TiplineError):
    status_code = 422

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.errors: dict[str, str] = dict(errors or ({field: message} if field else {}))


class NotFound(TiplineError):
    status_code = 404


class PermissionDenied(TiplineError):
    status_code = 403


class Conflict(TiplineError):
    status_code = 409


class RateLimited(TiplineError):
    status_code = 429


class TooLarge(InvalidInput):
    status_code = 413
