# mypy: disable-error-code="import-not-found"
"""Run by the Python 3.13 venv with ncmec-cybertip 0.1.1: argv = base_url user password png_path.
Prints one JSON object with what every call answered."""

import asyncio
import json
import sys
from datetime import UTC, datetime

from ncmec_cybertip import (
    ApiError,
    CyberTiplineClient,
    Email,
    FileAnnotations,
    FileDetails,
    IncidentSummary,
    InternetDetails,
    Person,
    Report,
    ReportAnnotations,
    Reporter,
)
from ncmec_cybertip.enums import FileRelevance, IncidentType
from ncmec_cybertip.report import PersonOrUserReported, WebPageIncident


def minimal() -> Report:
    return Report(
        incident_summary=IncidentSummary(
            incident_type=IncidentType.CHILD_PORNOGRAPHY,
            incident_date_time=datetime(2025, 10, 15, 8, 0, tzinfo=UTC)),
        internet_details=[InternetDetails(web_page_incident=WebPageIncident(url=["https://bad.example.com/x"]))],
        reporter=Reporter(reporting_person=Person(first_name="Rita", last_name="Reporter",
                                                  email=[Email(value="rita@example.com")])),
    )


def fullest() -> Report:
    report = minimal()
    report.incident_summary.escalate_to_high_priority = "Synthetic escalation"
    report.incident_summary.report_annotations = ReportAnnotations(sextortion=True, informational=True)
    report.person_or_user_reported = PersonOrUserReported(
        person_or_user_reported_person=Person(first_name="Sam", last_name="Suspect", age=30,
                                              age_assertion_discrepancy=True),
        screen_name="sam_s", profile_url=["https://example.com/u/sam_s"])
    return report


async def main() -> None:
    base, user, password, png = sys.argv[1:5]
    out: dict[str, object] = {}
    async with CyberTiplineClient(username=user, password=password, base_url=base) as c:
        status = await c.status()
        out["status"] = [int(status.response_code), status.response_description]
        out["minimal"] = (await c.submit(minimal())).report_id
        rid = (await c.submit(fullest())).report_id
        first = await c.upload(rid, png)
        second = await c.upload(rid, b"synthetic text", filename="notes.txt")
        out["uploads"] = [[first.file_id, first.hash], [second.file_id, second.hash]]
        info = await c.file_info(FileDetails(
            report_id=rid, file_id=first.file_id, file_viewed_by_esp=True,
            file_relevance=FileRelevance.REPORTED,
            file_annotations=FileAnnotations(generative_ai=True)))
        out["fileinfo"] = [int(info.response_code), info.report_id]
        done = await c.finish(rid)
        out["finish"] = [done.report_id, list(done.file_ids)]
        out["full"] = rid
        retract = await c.retract(int(str(out["minimal"])))
        out["retract"] = int(retract.response_code)
        try:
            await c.retract(rid)
        except ApiError as exc:
            out["retract_finished"] = [exc.response_code, exc.description]
    async with CyberTiplineClient(username=user, password=password + "x", base_url=base) as bad:
        try:
            await bad.status()
        except ApiError as exc:
            out["wrong_password"] = [exc.response_code, exc.description]
    print(json.dumps(out))


asyncio.run(main())
