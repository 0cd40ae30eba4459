"""From a partner's `report` document (as JSON, see esp.schema) to an ordinary Tipline report."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tipline.esp import geo
from tipline.reports.enums import AgeBand, Certainty, IncidentType, ReporterRole
from tipline.reports.models import Report
from tipline.reports.schemas import COUNTRY_CODES, Contact, ReportCreate, Suspect

INCIDENT_TYPES: dict[str, list[IncidentType]] = {
    "Child Pornography (possession, manufacture, and distribution)": [IncidentType.csam],
    "Online Enticement of Children for Sexual Acts": [IncidentType.image_pressure],
    "Unsolicited Obscene Material Sent to a Child": [IncidentType.harassment],
}
ANNOTATION_TYPES: dict[str, IncidentType] = {
    "sextortion": IncidentType.sextortion,
    "csamSolicitation": IncidentType.image_pressure,
}
# Annotations that raise the priority score, with the reason an analyst reads.
ANNOTATION_REASONS: dict[str, str] = {
    "sextortion": "partner annotation: sextortion",
    "csamSolicitation": "partner annotation: solicitation of sexual images",
    "minorToMinorInteraction": "partner annotation: minor-to-minor interaction",
    "sadisticOnlineExploitation": "partner annotation: sadistic online exploitation",
}
PARTIES = (("personOrUserReported", "personOrUserReportedPerson"),)
# People in the report who are not suspects: their identifiers are kept apart from the
# suspect's (report.suspect["other_parties"]) so that correlation never calls them suspects.
OTHER_PARTIES = (("intendedRecipient", "intendedRecipientPerson", "intended_recipient"),
                 ("victim", "victimPerson", "victim"))
MAX_ITEMS = 50
_URL_LIKE = re.compile(r"^(https?://)?[^\s/$.?#][^\s]*\.[^\s]+$", re.IGNORECASE)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    """The text of a simple element, whether or not it carried attributes."""
    if isinstance(value, dict):
        return str(value.get("value", ""))
    return "" if value is None else str(value)


def _phone(value: Any) -> str:
    number = _text(value)
    prefix = value.get("@countryCallingCode", "") if isinstance(value, dict) else ""
    return f"{prefix} {number}".strip() if prefix and not number.startswith("+") else number


def incident_types(doc: dict[str, Any]) -> list[IncidentType]:
    summary = doc["incidentSummary"]
    found = list(INCIDENT_TYPES.get(summary["incidentType"], [IncidentType.other]))
    for name, kind in ANNOTATION_TYPES.items():
        if name in (summary.get("reportAnnotations") or {}):
            found.append(kind)
    return list(dict.fromkeys(found))


def priority_extra(doc: dict[str, Any]) -> dict[str, str]:
    """Reasons for triage.on_new_report: the partner's escalation and its annotations."""
    summary = doc["incidentSummary"]
    extra: dict[str, str] = {}
    if summary.get("escalateToHighPriority"):
        extra["partner_escalation"] = "partner escalated: " + summary["escalateToHighPriority"][:200]
    annotations = summary.get("reportAnnotations") or {}
    for name, reason in ANNOTATION_REASONS.items():
        if name in annotations:
            extra[f"esp_{name}"] = reason
    return extra


def _ip_events(holder: dict[str, Any], usernames: list[str], notes: list[str]) -> None:
    for event in _list(holder.get("ipCaptureEvent")):
        # The username box takes IP addresses too; correlation indexes them as IPs.
        usernames.append(event["ipAddress"])
        notes.append(f"IP {event['ipAddress']} ({event.get('eventName', 'event')}"
                     f"{' ' + event['dateTime'] if event.get('dateTime') else ''})")


def _suspect(doc: dict[str, Any]) -> tuple[Suspect, list[str]]:
    usernames: list[str] = []
    links: list[str] = []
    emails: list[str] = []
    phones: list[str] = []
    notes: list[str] = []
    for key, head in PARTIES:
        for party in _list(doc.get(key)):
            person = party.get(head) or {}
            name = " ".join(p for p in (person.get("firstName"), person.get("lastName")) if p)
            if name:
                notes.append(f"name: {name}")
            emails += [_text(e) for e in _list(person.get("email"))]
            phones += [_phone(p) for p in _list(person.get("phone"))]
            usernames += [v for v in (party.get("screenName"), party.get("espIdentifier")) if v]
            usernames += _list(party.get("displayName"))
            links += _list(party.get("profileUrl"))
            _ip_events(party, usernames, notes)
            for device in _list(party.get("deviceId")):
                notes.append(f"device {device['idType']}: {device['idValue']}")
            for account in _list(party.get("associatedAccount")):
                usernames += [v for v in (account.get("screenName"), account.get("espIdentifier")) if v]
                links += _list(account.get("profileUrl"))
                emails += [_text(e) for e in _list(account.get("email"))]
                # The suspect's other accounts: their phones and IP addresses are the suspect's too.
                phones += [_phone(p) for p in _list(account.get("phone"))]
                _ip_events(account, usernames, notes)
    good_links = [u for u in links if _URL_LIKE.match(u)]
    suspect = Suspect(
        usernames=[u[:2048] for u in dict.fromkeys(usernames) if u][:MAX_ITEMS],
        profile_links=[u[:2048] for u in dict.fromkeys(good_links)][:MAX_ITEMS],
        emails=[e for e in dict.fromkeys(emails) if e][:MAX_ITEMS],
        phones=[p for p in dict.fromkeys(phones) if p][:MAX_ITEMS],
        details="\n".join(notes)[:20_000],
    )
    return suspect, notes


def _age_band(doc: dict[str, Any]) -> AgeBand:
    ages = [v["victimPerson"]["age"] for v in _list(doc.get("victim"))
            if isinstance(v.get("victimPerson", {}).get("age"), int)]
    if not ages:
        return AgeBand.unknown
    age = min(ages)
    for limit, band in ((9, AgeBand.under_9), (13, AgeBand.age_9_12), (16, AgeBand.age_13_15),
                        (18, AgeBand.age_16_17)):
        if age < limit:
            return band
    return AgeBand.unknown


def _country(*candidates: Any) -> str | None:
    for value in candidates:
        if isinstance(value, str) and value.upper() in COUNTRY_CODES:
            return value.upper()
    return None


def _victim_country(doc: dict[str, Any]) -> str | None:
    found: list[Any] = []
    for victim in _list(doc.get("victim")):
        found += [a.get("country") for a in _list((victim.get("victimPerson") or {}).get("address"))]
        found.append((victim.get("estimatedLocation") or {}).get("countryCode"))
    return _country(*found)


def _description(doc: dict[str, Any], partner_name: str, esp_report_id: int) -> str:
    summary = doc["incidentSummary"]
    lines = [f"Report from partner {partner_name} (partner report {esp_report_id}).",
             f"Incident type: {summary['incidentType']}."]
    if summary.get("platform"):
        lines.append(f"Platform: {summary['platform']}.")
    if summary.get("reportAnnotations"):
        lines.append("Annotations: " + ", ".join(sorted(summary["reportAnnotations"])) + ".")
    if summary.get("escalateToHighPriority"):
        lines.append(f"Escalation: {summary['escalateToHighPriority']}")
    lines.append(f"Incident time: {summary['incidentDateTime']}"
                 + (f" ({summary['incidentDateTimeDescription']})"
                    if summary.get("incidentDateTimeDescription") else ""))
    if "batchedReport" in doc:
        lines.append("Batched report: viral or potential meme.")
    if doc.get("additionalInfo"):
        lines.append(f"Additional information: {doc['additionalInfo']}")
    return "\n".join(lines)[:20_000]


def _urls(doc: dict[str, Any]) -> list[str]:
    urls: list[str] = []
    for details in _list(doc.get("internetDetails")):
        urls += _list((details.get("webPageIncident") or {}).get("url"))
    return [u[:2048] for u in dict.fromkeys(urls) if _URL_LIKE.match(u)][:MAX_ITEMS]


def _contact(doc: dict[str, Any]) -> Contact | None:
    person = doc["reporter"]["reportingPerson"]
    name = " ".join(p for p in (person.get("firstName"), person.get("lastName")) if p)
    emails = [_text(e) for e in _list(person.get("email"))]
    phones = [_phone(p) for p in _list(person.get("phone"))]
    try:
        return Contact(name=name[:200], email=emails[0] if emails else None,
                       phone=phones[0][:200] if phones else "")
    except ValidationError:
        return Contact(name=name[:200], phone=phones[0][:200] if phones else "")


def report_create(doc: dict[str, Any], *, partner_name: str, esp_report_id: int) -> ReportCreate:
    summary = doc["incidentSummary"]
    suspect, _notes = _suspect(doc)
    reporter_person = doc["reporter"]["reportingPerson"]
    contact = _contact(doc)
    return ReportCreate(
        reporter_role=ReporterRole.professional, incident_types=incident_types(doc)[:5],
        certainty=Certainty.certain,
        happened_on=datetime.fromisoformat(summary["incidentDateTime"]).date(),
        platform=(summary.get("platform") or "")[:500], urls=_urls(doc), suspect=suspect,
        child_age_band=_age_band(doc), child_country=_victim_country(doc),
        reporter_country=_country(*[a.get("country") for a in _list(reporter_person.get("address"))]),
        description=_description(doc, partner_name, esp_report_id),
        anonymous=contact is None or contact.is_empty(), contact=contact,
    )


def ip_country_hint(doc: dict[str, Any], *, data_file: str | None = None) -> dict[str, Any] | None:
    """Where the reported person's first public IP address (ipCaptureEvent) is registered,
    from the offline database: a routing hint with its source and date, never a fact.
    Private, reserved and unknown addresses give no hint."""
    for key, _head in PARTIES:
        for party in _list(doc.get(key)):
            for event in _list(party.get("ipCaptureEvent")):
                found = geo.lookup(str(event.get("ipAddress", "")), data_file=data_file)
                if found is not None:
                    return {"country": found.country, "source": found.database,
                            "database_date": found.database_date, "ip": event["ipAddress"],
                            "authoritative": False}
    return None


def other_parties(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The identifiers of the intended recipients and victims, one entry a person, each with
    its role: [{"role", "screen_names", "emails", "phones", "profile_urls"}]. People with no
    identifier are left out (their names and ages are in the document, not needed to match)."""
    found: list[dict[str, Any]] = []
    for key, head, role in OTHER_PARTIES:
        for party in _list(doc.get(key)):
            if not isinstance(party, dict):
                continue
            person = party.get(head) or {}
            screen_names = [v for v in (party.get("screenName"), party.get("espIdentifier")) if v]
            screen_names += _list(party.get("displayName"))
            emails = [_text(e) for e in _list(person.get("email"))]
            phones = [_phone(p) for p in _list(person.get("phone"))]
            urls = [u for u in _list(party.get("profileUrl")) if isinstance(u, str) and _URL_LIKE.match(u)]
            for account in _list(party.get("associatedAccount")):
                screen_names += [v for v in (account.get("screenName"), account.get("espIdentifier")) if v]
                urls += [u for u in _list(account.get("profileUrl"))
                         if isinstance(u, str) and _URL_LIKE.match(u)]
                emails += [_text(e) for e in _list(account.get("email"))]
                phones += [_phone(p) for p in _list(account.get("phone"))]
            entry = {
                "role": role,
                "screen_names": [str(v)[:2048] for v in dict.fromkeys(screen_names) if v][:MAX_ITEMS],
                "emails": [e[:2048] for e in dict.fromkeys(emails) if e][:MAX_ITEMS],
                "phones": [p[:2048] for p in dict.fromkeys(phones) if p][:MAX_ITEMS],
                "profile_urls": [u[:2048] for u in dict.fromkeys(urls)][:MAX_ITEMS],
            }
            if any(entry[k] for k in ("screen_names", "emails", "phones", "profile_urls")):
                found.append(entry)
    return found[:MAX_ITEMS]


def apply_other_parties(report: Report, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Record other_parties on the Tipline report (report.suspect["other_parties"]), apart
    from the suspect's own lists. Nothing is written when there are none."""
    parties = other_parties(doc)
    if parties:
        report.suspect = {**(report.suspect or {}), "other_parties": parties}  # a new dict: JSON change
    return parties


def apply_ip_country_hint(report: Report, doc: dict[str, Any], *,
                          data_file: str | None = None) -> dict[str, Any] | None:
    """Record the hint on the Tipline report (report.suspect["ip_country_hint"]). The child's
    and reporter's countries are left as the partner gave them, even when empty."""
    hint = ip_country_hint(doc, data_file=data_file)
    if hint is not None:
        report.suspect = {**(report.suspect or {}), "ip_country_hint": hint}  # a new dict: JSON change
    return hint
