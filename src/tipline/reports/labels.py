"""What each choice on the form says, in the reporter's language (built per request)."""

from __future__ import annotations

from tipline.i18n import _


def reporter_roles() -> list[tuple[str, str]]:
    return [
        ("child_self", _("I am the child or teenager this happened to")),
        ("parent_carer", _("I am a parent or carer")),
        ("professional", _("I work with children (teacher, social worker, health worker…)")),
        ("other_adult", _("I am another adult")),
    ]


def incident_types() -> list[tuple[str, str]]:
    return [
        ("harassment", _("Someone harasses a child or teen online or makes them feel unsafe")),
        ("image_pressure", _("Someone asks or pressures a child or teen to take sexual pictures or videos, or to show themselves on a video call or livestream")),
        ("sextortion", _("Someone threatens to share images of a child or teen unless they send more images or money")),
        ("csam", _("Someone creates, shares or has sexual images or videos of a child")),
        ("other", _("Something else that worries me")),
    ]


def frequencies() -> list[tuple[str, str]]:
    return [("once", _("Once")), ("repeated", _("More than once")), ("unsure", _("I don't know"))]


def certainties() -> list[tuple[str, str]]:
    return [("certain", _("I am sure it happened")), ("suspicious", _("I suspect it, but I am not sure"))]


def age_bands() -> list[tuple[str, str]]:
    return [
        ("unknown", _("I don't know")),
        ("under_9", _("Under 9")),
        ("9_12", _("9 to 12")),
        ("13_15", _("13 to 15")),
        ("16_17", _("16 or 17")),
    ]


def demands() -> list[tuple[str, str]]:
    return [("money", _("Money")), ("images", _("More pictures or videos")), ("other", _("Something else"))]


def yes_no_unsure() -> list[tuple[str, str]]:
    return [("yes", _("Yes")), ("no", _("No")), ("unsure", _("I don't know"))]


def coarse_status(value: str) -> tuple[str, str]:
    """A status and one sentence explaining it."""
    texts = {
        "received": (_("Received"), _("Your report is safely stored and waiting for a trained analyst.")),
        "under_review": (_("Under review"), _("An analyst is reviewing your report.")),
        "referred": (_("Referred to an agency"), _("Your report has been passed to an agency that can act on it, such as the police or child protection services.")),
        "closed": (_("Closed"), _("Work on this report has finished. Thank you for reporting.")),
    }
    return texts[value]


def all_choices() -> dict[str, list[tuple[str, str]]]:
    return {
        "reporter_roles": reporter_roles(),
        "incident_types": incident_types(),
        "frequencies": frequencies(),
        "certainties": certainties(),
        "age_bands": age_bands(),
        "demands": demands(),
        "yes_no_unsure": yes_no_unsure(),
    }


def label(kind: str, value: str) -> str:
    """The human words for a stored code (staff pages), or the code itself if unknown."""
    tables = {
        "reporter_role": reporter_roles, "incident_type": incident_types,
        "frequency": frequencies, "certainty": certainties, "age_band": age_bands,
        "demand": demands, "yes_no": yes_no_unsure,
    }
    table = tables.get(kind)
    return dict(table()).get(value, value) if table else value
