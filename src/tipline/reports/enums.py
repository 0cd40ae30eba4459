"""Controlled vocabularies of the report form (from the How2Report page's list)."""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    public_web = "public_web"
    public_api = "public_api"
    partner = "partner"
    staff_phone = "staff_phone"


class ReporterRole(StrEnum):
    child_self = "child_self"
    parent_carer = "parent_carer"
    professional = "professional"
    other_adult = "other_adult"


class IncidentType(StrEnum):
    harassment = "harassment"
    image_pressure = "image_pressure"
    sextortion = "sextortion"
    csam = "csam"
    other = "other"


class Frequency(StrEnum):
    once = "once"
    repeated = "repeated"
    unsure = "unsure"


class Certainty(StrEnum):
    certain = "certain"
    suspicious = "suspicious"


class AgeBand(StrEnum):
    under_9 = "under_9"
    age_9_12 = "9_12"
    age_13_15 = "13_15"
    age_16_17 = "16_17"
    unknown = "unknown"


class YesNoUnsure(StrEnum):
    yes = "yes"
    no = "no"
    unsure = "unsure"


class Demand(StrEnum):
    money = "money"
    images = "images"
    other = "other"
