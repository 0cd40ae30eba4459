"""The HTML report form's fields, mapped onto the one report schema."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tipline.errors import InvalidInput
from tipline.i18n import _
from tipline.reports.schemas import ReportCreate
from tipline.validation import describe_validation_errors

LIST_FIELDS = {
    "urls": "urls",
    "suspect_usernames": "usernames",
    "suspect_profile_links": "profile_links",
    "suspect_emails": "emails",
    "suspect_phones": "phones",
}


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]


def form_to_data(fields: dict[str, list[str]]) -> dict[str, Any]:
    def first(name: str) -> str:
        values = fields.get(name)
        return values[0] if values else ""

    anonymous = first("anonymous") != "no"
    data: dict[str, Any] = {
        "reporter_role": first("reporter_role") or None,
        "incident_types": fields.get("incident_types", []),
        "frequency": first("frequency") or "unsure",
        "certainty": first("certainty") or "suspicious",
        "happened_on": first("happened_on") or None,
        "happened_period": first("happened_period"),
        "immediate_danger": first("immediate_danger") == "yes",
        "platform": first("platform"),
        "urls": lines(first("urls")),
        "suspect": {
            "usernames": lines(first("suspect_usernames")),
            "profile_links": lines(first("suspect_profile_links")),
            "emails": lines(first("suspect_emails")),
            "phones": lines(first("suspect_phones")),
            "details": first("suspect_details"),
        },
        "child_age_band": first("child_age_band") or "unknown",
        "child_country": first("child_country") or None,
        "child_region": first("child_region"),
        "reporter_country": first("reporter_country") or None,
        "description": first("description"),
        "sextortion": {
            "demands": fields.get("sextortion_demands", []),
            "deadline": first("sextortion_deadline"),
        },
        "meeting_planned": first("meeting_planned") or "unsure",
        "meeting_details": first("meeting_details"),
        "anonymous": anonymous,
        "contact": None if anonymous else {
            "name": first("contact_name"),
            "email": first("contact_email"),
            "phone": first("contact_phone"),
            "best_time": first("contact_best_time"),
        },
    }
    if data["reporter_role"] is None:
        del data["reporter_role"]
    return data


def validate_report(data: dict[str, Any], max_text_chars: int, *, separator: str = "_") -> ReportCreate:
    """Validate; raise InvalidInput whose errors are keyed by field names (form names use
    "_" between parts, the JSON API keeps the dotted path)."""
    try:
        report = ReportCreate.model_validate(data)
    except ValidationError as exc:
        errors = {
            key.replace(".", separator): text
            for key, text in describe_validation_errors(exc.errors()).items()
        }
        raise InvalidInput(_("Some answers need another look."), errors=errors) from exc
    if len(report.description) > max_text_chars:
        raise InvalidInput(
            _("Some answers need another look."),
            errors={"description": _("This is too long: at most %(n)s characters.") % {"n": max_text_chars}},
        )
    if not report.anonymous and (report.contact is None or report.contact.is_empty()):
        raise InvalidInput(
            _("Some answers need another look."),
            errors={f"contact{separator}name": _("You chose to give contact details: add at least a name, e-mail or phone number, or choose to stay anonymous.")},
        )
    return report
