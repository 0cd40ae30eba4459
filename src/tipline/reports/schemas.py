"""The report's shape: one schema for the web form, the JSON API and staff entry."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from babel import Locale
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from tipline import clock
from tipline.reports.enums import (
    AgeBand,
    Certainty,
    Demand,
    Frequency,
    IncidentType,
    ReporterRole,
    YesNoUnsure,
)

COUNTRY_CODES: frozenset[str] = frozenset(
    str(code) for code in Locale("en").territories
    if isinstance(code, str) and len(code) == 2 and code.isalpha()
)

Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Line = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)]
Item = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]

_URL_LIKE = re.compile(r"^(https?://)?[^\s/$.?#][^\s]*\.[^\s]+$", re.IGNORECASE)


def _country(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    code = value.strip().upper()
    if code not in COUNTRY_CODES:
        raise ValueError(f"“{value}” is not a country code we know")
    return code


class Suspect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    usernames: list[Item] = Field(default_factory=list, max_length=50)
    profile_links: list[Item] = Field(default_factory=list, max_length=50)
    emails: list[Item] = Field(default_factory=list, max_length=50)
    phones: list[Item] = Field(default_factory=list, max_length=50)
    details: LongText = ""


class Sextortion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    demands: list[Demand] = Field(default_factory=list)
    deadline: Short = ""


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Short = ""
    email: EmailStr | None = None
    phone: Short = ""
    best_time: Short = ""

    @field_validator("email", mode="before")
    @classmethod
    def _blank_email(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def is_empty(self) -> bool:
        return not (self.name or self.email or self.phone)


class ReportCreate(BaseModel):
    """What anyone can tell us. Only who is reporting, what happened and a description are
    required; everything else helps but is optional."""

    model_config = ConfigDict(extra="forbid")

    reporter_role: ReporterRole
    incident_types: list[IncidentType] = Field(min_length=1, max_length=5)
    frequency: Frequency = Frequency.unsure
    certainty: Certainty = Certainty.suspicious
    happened_on: date | None = None
    happened_period: Short = ""
    immediate_danger: bool = False

    platform: Line = ""
    urls: list[Item] = Field(default_factory=list, max_length=50)
    suspect: Suspect = Field(default_factory=Suspect)

    child_age_band: AgeBand = AgeBand.unknown
    child_country: str | None = None
    child_region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    reporter_country: str | None = None

    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
    sextortion: Sextortion = Field(default_factory=Sextortion)
    meeting_planned: YesNoUnsure = YesNoUnsure.unsure
    meeting_details: LongText = ""

    anonymous: bool = True
    contact: Contact | None = None
    language: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)] = "en"

    _child_country = field_validator("child_country")(classmethod(lambda cls, v: _country(v)))
    _reporter_country = field_validator("reporter_country")(classmethod(lambda cls, v: _country(v)))

    @field_validator("incident_types")
    @classmethod
    def _unique_types(cls, value: list[IncidentType]) -> list[IncidentType]:
        return list(dict.fromkeys(value))

    @field_validator("happened_on")
    @classmethod
    def _not_future(cls, value: date | None) -> date | None:
        if value is not None and value > clock.now().date():
            raise ValueError("the date is in the future")
        return value

    @field_validator("urls")
    @classmethod
    def _url_like(cls, value: list[str]) -> list[str]:
        for url in value:
            if not _URL_LIKE.match(url):
                raise ValueError(f"“{url[:80]}” does not look like a web address")
        return value
