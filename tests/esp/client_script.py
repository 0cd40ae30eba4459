# mypy: disable-error-code="import-not-found"
"""Run by the Python 3.13 venv with ncmec-cybertip 0.1.1 (never by Tipline's own Python).
Each mode prints one JSON object on stdout.

    client_script.py run BASE_URL USER PASSWORD PNG_1 PNG_2
        The whole flow against a live server: what every call answered.
    client_script.py capture
        The request documents the client writes for this script's reports and file details,
        with fixed report and file ids: {"file name": "document text"} (tests/esp/golden).
    client_script.py roundtrip FILE...
        Whether the client still writes each recorded request document byte for byte
        (read back with the client's own model, written again).
    client_script.py parse MODEL=FILE...
        Each response document read by the client's own response handling
        (CyberTiplineClient._parse, as after a real call); MODEL is ReportResponse or
        ReportDoneResponse.

All data is synthetic: invented names, example.com/.org addresses, 555-01xx numbers,
documentation IP ranges and 8.8.x.x."""

import asyncio
import json
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from ncmec_cybertip import (
    Address,
    ApiError,
    AssociatedAccount,
    BatchedReport,
    CellPhoneIncident,
    ChatImIncident,
    ContactPerson,
    CyberTiplineClient,
    Details,
    DeviceId,
    Email,
    EmailIncident,
    EstimatedLocation,
    FileAnnotations,
    FileDetails,
    IncidentSummary,
    IntendedRecipient,
    InternetDetails,
    IpCaptureEvent,
    LawEnforcement,
    NameValuePair,
    NewsgroupIncident,
    NonInternetIncident,
    OnlineGamingIncident,
    Peer2PeerIncident,
    Person,
    PersonOrUserReported,
    Phone,
    Report,
    ReportAnnotations,
    ReportDoneResponse,
    Reporter,
    ReportResponse,
    Victim,
    WebPageIncident,
    file_hashes,
)
from ncmec_cybertip.enums import (
    AddressType,
    AssociatedAccountType,
    BatchedReportReason,
    DetailsType,
    EmailType,
    EventName,
    FileRelevance,
    IncidentType,
    IndustryClassification,
    PhoneType,
)

WHEN = datetime(2025, 10, 15, 8, 0, tzinfo=UTC)
EST = timezone(timedelta(hours=-5))
# The 1x1 white PNG of esp-client-requests.txt: the file the captured details describe.
CAPTURE_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c49444154789c63f8ffff3f0005fe02fe0def46b80000000049454e44ae426082")
CAPTURE_REPORT_ID = 7000001
CAPTURE_FILE_IDS = ("ffacf0e52ad2a95ed07aaad9788a1205", "d58d6e08b34d3daf19f479f7912fadeb")


# --- the documents ---------------------------------------------------------------------------

def minimal() -> Report:
    return Report(
        incident_summary=IncidentSummary(
            incident_type=IncidentType.CHILD_PORNOGRAPHY,
            incident_date_time=datetime(2025, 10, 15, 8, 0, tzinfo=UTC)),
        internet_details=[InternetDetails(web_page_incident=WebPageIncident(url=["https://bad.example.com/x"]))],
        reporter=Reporter(reporting_person=Person(first_name="Rita", last_name="Reporter",
                                                  email=[Email(value="rita@example.com")])),
    )


def _phone(last: int, kind: PhoneType = PhoneType.MOBILE) -> Phone:
    return Phone(value=f"202-555-01{last:02d}", type=kind, verified=True, verification_date=WHEN,
                 country_calling_code="+1", extension="7")


def _email(local: str, kind: EmailType = EmailType.HOME, domain: str = "example.com") -> Email:
    return Email(value=f"{local}@{domain}", type=kind, verified=True, verification_date=WHEN)


def _address(street: str, kind: AddressType = AddressType.HOME, *, state: str | None = "VA",
             country: str = "US", non_usa_state: str | None = None) -> Address:
    return Address(type=kind, address=street, city="Exampleton", zip_code="22314", state=state,
                   non_usa_state=non_usa_state, country=country)


def _person(first: str, last: str, n: int, *, age: int, born: date, discrepancy: bool) -> Person:
    """A person with every field the client has."""
    return Person(first_name=first, last_name=last,
                  phone=[_phone(n), _phone(n + 1, PhoneType.HOME)],
                  email=[_email(f"{first}.{last}".lower()), _email(f"{first}.work".lower(), EmailType.WORK,
                                                                  "example.org")],
                  address=[_address(f"{n} Example Street"),
                           _address(f"{n} Rue Exemple", AddressType.SHIPPING, state=None, country="FR",
                                    non_usa_state="Ile-de-France")],
                  age=age, age_assertion_discrepancy=discrepancy, date_of_birth=born)


def _ip(address: str, event: EventName, *, proxy: bool = False, port: int = 443) -> IpCaptureEvent:
    return IpCaptureEvent(ip_address=address, event_name=event, date_time=WHEN, possible_proxy=proxy, port=port)


def _device(kind: str, value: str, event: EventName = EventName.LOGIN) -> DeviceId:
    return DeviceId(id_type=kind, id_value=value, event_name=event, date_time=WHEN)


def _location(city: str, country: str) -> EstimatedLocation:
    return EstimatedLocation(verified=False, timestamp=WHEN, city=city, region="Example Region",
                             country_code=country)


def _account(kind: AssociatedAccountType, name: str, n: int, ip: str) -> AssociatedAccount:
    """An associated account with every field the client has."""
    return AssociatedAccount(
        account_type=kind, third_party_user=kind is AssociatedAccountType.LINKED,
        platform="OtherApp (synthetic)", first_name=name.title(), middle_name="Q", last_name="Example",
        approximate_age=30, age_assertion_discrepancy=False, phone=[_phone(n, PhoneType.RECOVERY)],
        email=[_email(f"{name}.alt", EmailType.RECOVERY)], all_emails_reported=True,
        address=[_address(f"{n} Billing Road", AddressType.BILLING)], esp_service="OtherApp Messenger",
        esp_identifier=f"acct-{name}", profile_url=[f"https://other.example.org/{name}"],
        screen_name=f"{name}_alt", display_name=[f"{name.title()} Alt"], profile_bio="alt bio (synthetic)",
        group_identifier=f"group-{name}", ip_capture_event=[_ip(ip, EventName.REGISTRATION)],
        device_id=[_device("SSID", f"ExampleWifi-{n}")], additional_info=f"associated account {name}")


def _incidents() -> list[InternetDetails]:
    """Every internetDetails variant, one an entry (the schema allows one incident each)."""
    return [
        InternetDetails(web_page_incident=WebPageIncident(
            third_party_hosted_content=True,
            url=["https://bad.example.com/gallery/1", "https://mirror.example.org/g/1"],
            additional_info="web page note")),
        InternetDetails(email_incident=EmailIncident(
            email_address=[_email("sender"), _email("relay", EmailType.BUSINESS)],
            content="email body excerpt (synthetic)", additional_info="email note")),
        InternetDetails(newsgroup_incident=NewsgroupIncident(
            name="alt.example.synthetic", email_address=[_email("poster")],
            content="newsgroup post excerpt (synthetic)", additional_info="newsgroup note")),
        InternetDetails(chat_im_incident=ChatImIncident(
            chat_client="ExampleChat", chat_room_name="room-42", content="chat excerpt (synthetic)",
            additional_info="chat note")),
        InternetDetails(online_gaming_incident=OnlineGamingIncident(
            game_name="Example Quest", console="ExampleBox", content="in-game chat (synthetic)",
            additional_info="gaming note")),
        InternetDetails(cell_phone_incident=CellPhoneIncident(
            phone_number=_phone(30), latitude=38.8048, longitude=-77.0469, additional_info="phone note")),
        InternetDetails(non_internet_incident=NonInternetIncident(
            location_name="Example Community Center",
            incident_address=[_address("31 Example Street", AddressType.BUSINESS)],
            additional_info="non-internet note")),
        InternetDetails(peer2peer_incident=Peer2PeerIncident(
            client="ExampleTorrent", ip_capture_event=[_ip("198.51.100.60", EventName.OTHER, port=6881)],
            file_names="synthetic-a.png, synthetic-b.png", additional_info="p2p note")),
    ]


def fullest() -> Report:
    """Every section and field ncmec-cybertip 0.1.1 can write, in one report."""
    return Report(
        batched_report=BatchedReport(reason=BatchedReportReason.VIRAL_POTENTIAL_MEME),
        incident_summary=IncidentSummary(
            incident_type=IncidentType.CHILD_PORNOGRAPHY, platform="ExampleApp",
            escalate_to_high_priority="Synthetic escalation: ongoing contact",
            report_annotations=ReportAnnotations(
                sextortion=True, csam_solicitation=True, minor_to_minor_interaction=True, spam=True,
                sadistic_online_exploitation=True, informational=True),
            incident_date_time=datetime(2025, 10, 14, 21, 30, tzinfo=EST),
            incident_date_time_description="Approximate: evening of 14 October (synthetic)"),
        internet_details=_incidents(),
        law_enforcement=LawEnforcement(
            flea_country="CA", agency_name="Example County Police", case_number="EX-2025-0001",
            officer_contact=ContactPerson(first_name="Olive", last_name="Officer",
                                          phone=[_phone(40, PhoneType.WORK)],
                                          email=[_email("olive.officer", EmailType.WORK, "police.example.org")],
                                          address=[_address("40 Precinct Way", AddressType.BUSINESS)]),
            reported_to_le=True, served_legal_process_domestic=False,
            served_legal_process_international=True),
        reporter=Reporter(
            reporting_person=_person("Rita", "Reporter", 10, age=41, born=date(1984, 3, 9),
                                     discrepancy=False),
            contact_person=ContactPerson(first_name="Carl", last_name="Contact",
                                         phone=[_phone(12, PhoneType.BUSINESS)],
                                         email=[_email("carl.contact", EmailType.BUSINESS)],
                                         address=[_address("12 Example Plaza", AddressType.BUSINESS)]),
            company_template="Example Co reports apparent child sexual exploitation (synthetic boilerplate)",
            terms_of_service="Section 4: no exploitation of minors (synthetic)",
            legal_url="https://example.com/legal"),
        person_or_user_reported=PersonOrUserReported(
            person=_person("Sam", "Suspect", 20, age=34, born=date(1991, 5, 1), discrepancy=True),
            vehicle_description="Grey hatchback (synthetic)", esp_identifier="user-1001",
            esp_service="ExampleApp Chat", compromised_account=False, screen_name="sam_s",
            display_name=["Sam S", "S. Suspect"],
            profile_url=["https://social.example.com/u/sam_s", "https://social.example.com/id/1001"],
            profile_bio="bio (synthetic)",
            ip_capture_event=[_ip("192.0.2.44", EventName.LOGIN), _ip("8.8.8.8", EventName.UPLOAD, proxy=True),
                              _ip("2001:db8::44", EventName.REGISTRATION)],
            device_id=[_device("IMEI", "490154203237518"), _device("IDFA", "00000000-0000-4000-8000-000000000001")],
            third_party_user_reported=False, prior_ct_reports=[111111111, 222222222],
            group_identifier="group-sam", estimated_location=_location("Exampleton", "US"),
            all_emails_reported=True,
            associated_account=[_account(AssociatedAccountType.LINKED, "sammy", 22, "198.51.100.22"),
                                _account(AssociatedAccountType.BILLING, "sbill", 24, "198.51.100.24")],
            additional_info="reported-user note (synthetic)"),
        intended_recipient=[
            IntendedRecipient(
                person=_person("Ivy", "Recipient", 50, age=14, born=date(2011, 2, 2), discrepancy=False),
                esp_identifier="user-2002", esp_service="ExampleApp Chat", compromised_account=False,
                screen_name="ivy_r", display_name=["Ivy R"], profile_url=["https://social.example.com/u/ivy_r"],
                profile_bio="recipient bio (synthetic)", ip_capture_event=[_ip("203.0.113.50", EventName.LOGIN)],
                device_id=[_device("IMEI", "356938035643809")], prior_ct_reports=[333333333],
                group_identifier="group-ivy", estimated_location=_location("Lyon", "FR"),
                all_emails_reported=False, additional_info="intended recipient note"),
            IntendedRecipient(screen_name="ian_r2", profile_url=["https://social.example.com/u/ian_r2"]),
        ],
        victim=[
            Victim(
                person=_person("Val", "Victim", 60, age=12, born=date(2013, 6, 6), discrepancy=True),
                esp_identifier="user-3003", esp_service="ExampleApp Chat", compromised_account=True,
                screen_name="val_v", display_name=["Val V"], profile_url=["https://social.example.com/u/val_v"],
                profile_bio="victim bio (synthetic)", ip_capture_event=[_ip("203.0.113.60", EventName.LOGIN)],
                device_id=[_device("ICCID", "8901260000000000001")], school_name="Example Middle School",
                prior_ct_reports=[444444444], estimated_location=_location("Toronto", "CA"),
                all_emails_reported=True,
                associated_account=[_account(AssociatedAccountType.PARENT_GUARDIAN, "valparent", 62,
                                             "203.0.113.62")],
                additional_info="victim note"),
            Victim(person=Person(first_name="Wes", age=15), screen_name="wes_w"),
        ],
        additional_info="Report-level note (synthetic)",
    )


def _annotations(*, meme: bool) -> FileAnnotations:
    return FileAnnotations(
        anime_drawing_virtual_hentai=True, potential_meme=meme or None, viral=True,
        possible_self_production=True, physical_harm=True, violence_gore=True, bestiality=True,
        live_streaming=True, infant=True, generative_ai=True)


def _exif(n: int) -> list[Details]:
    return [Details(name_value_pair=[
        NameValuePair(type=DetailsType.EXIF, name="Make", value="ExampleCam"),
        NameValuePair(type=DetailsType.EXIF, name="Model", value=f"EC-{n}"),
        NameValuePair(type=DetailsType.EXIF, name="DateTimeOriginal", value="2025:10:14 21:29:00"),
    ])]


def details_full(report_id: int, file_id: str, data: bytes) -> FileDetails:
    """The first file: Reported, every annotation, classification, hashes, IP, devices, EXIF."""
    return FileDetails(
        report_id=report_id, file_id=file_id, original_file_name="IMG_0042.png",
        uploaded_to_esp_timestamp=WHEN, location_of_file="https://cdn.example.com/m/42.png",
        file_viewed_by_esp=True, exif_viewed_by_esp=True, publicly_available=False,
        file_relevance=FileRelevance.REPORTED, file_annotations=_annotations(meme=True),
        industry_classification=IndustryClassification.A2, original_file_hash=file_hashes(data),
        ip_capture_event=_ip("8.8.4.4", EventName.UPLOAD),
        device_id=[_device("IMEI", "490154203237518", EventName.UPLOAD), _device("SSID", "ExampleWifi")],
        details=_exif(1), additional_info=["File note 1 (synthetic)", "File note 2"])


def details_supplemental(report_id: int, file_id: str, data: bytes) -> FileDetails:
    """The second file: Supplemental Reported (no classification, no potentialMeme), never viewed."""
    return FileDetails(
        report_id=report_id, file_id=file_id, original_file_name="frame-0002.png",
        uploaded_to_esp_timestamp=WHEN, location_of_file="https://cdn.example.com/m/43.png",
        file_viewed_by_esp=False, exif_viewed_by_esp=False, publicly_available=True,
        file_relevance=FileRelevance.SUPPLEMENTAL_REPORTED, file_annotations=_annotations(meme=False),
        original_file_hash=file_hashes(data, ("md5", "sha256")),
        ip_capture_event=_ip("8.8.4.4", EventName.UPLOAD, port=8443),
        device_id=[_device("IDFA", "00000000-0000-4000-8000-000000000002", EventName.UPLOAD)],
        details=_exif(2), additional_info=["Supplemental file note"])


def details_minimal(report_id: int, file_id: str) -> FileDetails:
    return FileDetails(report_id=report_id, file_id=file_id)


def _xml(model: Report | FileDetails) -> str:
    # Exactly as CyberTiplineClient.submit and .file_info write them.
    return model.to_xml(encoding="utf-8", xml_declaration=True, exclude_none=True).decode("utf-8")


# --- modes -----------------------------------------------------------------------------------

async def _expect_error(call: Any) -> list[Any]:
    try:
        await call
    except ApiError as exc:
        return [exc.response_code, exc.description, exc.report_id]
    return ["no error"]


async def run(base: str, user: str, password: str, png_1: str, first_bytes: bytes,
              second_bytes: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with CyberTiplineClient(username=user, password=password, base_url=base) as c:
        status = await c.status()
        out["status"] = [int(status.response_code), status.response_description]
        small = (await c.submit(minimal())).report_id
        assert small is not None
        out["minimal"] = small
        rid = (await c.submit(fullest())).report_id
        assert rid is not None
        out["full"] = rid
        first = await c.upload(rid, png_1)  # by path: the file's own name is sent
        second = await c.upload(rid, second_bytes, filename="frame-0002.png")
        assert first.file_id is not None and second.file_id is not None
        out["uploads"] = [[first.report_id, first.file_id, first.hash],
                          [second.report_id, second.file_id, second.hash]]
        infos = [await c.file_info(details_full(rid, first.file_id, first_bytes)),
                 await c.file_info(details_supplemental(rid, second.file_id, second_bytes))]
        out["fileinfo"] = [[int(i.response_code), i.report_id, i.file_id] for i in infos]
        out["fileinfo_unknown_file"] = await _expect_error(
            c.file_info(details_minimal(small, "0" * 32)))
        done = await c.finish(rid)
        out["finish"] = [int(done.response_code), done.report_id, list(done.file_ids)]
        out["upload_after_finish"] = await _expect_error(c.upload(rid, first_bytes, filename="late.png"))
        retract = await c.retract(small)
        out["retract"] = [int(retract.response_code), retract.report_id]
        out["finish_retracted"] = await _expect_error(c.finish(small))
        out["retract_finished"] = await _expect_error(c.retract(rid))
    async with CyberTiplineClient(username=user, password=password + "x", base_url=base) as bad:
        out["wrong_password"] = await _expect_error(bad.status())
    return out


def capture() -> dict[str, str]:
    rid, (first, second) = CAPTURE_REPORT_ID, CAPTURE_FILE_IDS
    return {
        "client_submit_fullest.xml": _xml(fullest()),
        "client_fileinfo_minimal.xml": _xml(details_minimal(rid, first)),
        "client_fileinfo_fullest.xml": _xml(details_full(rid, first, CAPTURE_PNG)),
        "client_fileinfo_supplemental.xml": _xml(details_supplemental(rid, second, CAPTURE_PNG)),
    }


def roundtrip(paths: list[str]) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for path in paths:
        data = Path(path).read_bytes()
        model = FileDetails if b"<fileDetails" in data else Report
        again = model.from_xml(data).to_xml(encoding="utf-8", xml_declaration=True, exclude_none=True)
        found[Path(path).name] = again == data
    return found


def parse(pairs: list[str]) -> dict[str, Any]:
    """What the client makes of each response: the parsed fields, or its ApiError."""
    client = CyberTiplineClient(username="u", password="p", base_url="http://127.0.0.1:9/ispws")
    models: dict[str, type[ReportResponse] | type[ReportDoneResponse]] = {
        "ReportResponse": ReportResponse, "ReportDoneResponse": ReportDoneResponse}
    found: dict[str, Any] = {}
    for pair in pairs:
        name, _, path = pair.partition("=")
        response = httpx.Response(200, content=Path(path).read_bytes(), headers={"Request-ID": "golden"})
        try:
            parsed = client._parse(response, models[name])
        except ApiError as exc:
            found[Path(path).name] = {"api_error": [exc.response_code, exc.description, exc.report_id,
                                                    exc.request_id]}
            continue
        except Exception as exc:  # reported to the test, which names the file
            found[Path(path).name] = {"failed": f"{type(exc).__name__}: {exc}"[:500]}
            continue
        found[Path(path).name] = {"ok": parsed.model_dump(mode="json")}
    asyncio.run(client.aclose())
    return found


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "run":
        base, user, password, png_1, png_2 = args
        out: Any = asyncio.run(run(base, user, password, png_1, Path(png_1).read_bytes(),
                                   Path(png_2).read_bytes()))
    elif mode == "capture":
        out = capture()
    elif mode == "roundtrip":
        out = roundtrip(args)
    elif mode == "parse":
        out = parse(args)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
