"""Turn Pydantic's errors into one plain sentence per field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tipline.i18n import _


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",) and not isinstance(p, int)]
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return _("This is required.")
    if kind == "string_too_long":
        return _("This is too long: at most %(n)s characters.") % {"n": ctx.get("max_length")}
    if kind == "string_too_short":
        return _("This is required.")
    if kind == "too_short":
        return _("Choose at least %(n)s.") % {"n": ctx.get("min_length")}
    if kind == "too_long":
        return _("Too many entries: at most %(n)s.") % {"n": ctx.get("max_length")}
    if kind == "enum":
        return _("Choose one of: %(allowed)s.") % {"allowed": ctx.get("expected", "")}
    if kind.startswith("date"):
        return _("Enter a real date (year-month-day).")
    if kind == "extra_forbidden":
        return _("This field is not part of a report.")
    if kind == "value_error":
        text = str(ctx.get("error") or error.get("msg", ""))
        return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".") if text else _("Invalid value.")
    if kind in ("bool_parsing", "bool_type"):
        return _("Answer yes or no.")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _("This must be an object.")
    if kind == "list_type":
        return _("This must be a list.")
    return str(error.get("msg", _("Invalid value.")))


def describe_validation_errors(errors: Sequence[Any]) -> dict[str, str]:
    described: dict[str, str] = {}
    for error in errors:
        field = _field_name(error.get("loc", ()))
        described.setdefault(field, _message(error))
    return described
