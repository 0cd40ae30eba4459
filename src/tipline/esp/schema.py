"""The `report` and `fileDetails` documents, declared element by element.

Written by Tipline from the documented structure of the CyberTipline Reporting API (element
names, order, enumerations and field limits); see docs and esp-api.md §4, §5 and §7. Where
real clients are known to depart from that structure, the departure is accepted on
purpose and marked "tolerated" with the reason.
"""

from __future__ import annotations

from babel import Locale

from tipline.esp.xml import (
    Attr,
    Child,
    Complex,
    Simple,
    a_date,
    boolean,
    date_or_date_time,
    date_time,
    double,
    empty,
    enum,
    flag,
    integer,
    ip_address,
    long_int,
    past_date_time_with_zone,
    pattern,
    text,
    url,
)

INCIDENT_TYPES = (
    "Child Pornography (possession, manufacture, and distribution)",
    "Child Sex Trafficking",
    "Child Sex Tourism",
    "Child Sexual Molestation",
    "Misleading Domain Name",
    "Misleading Words or Digital Images on the Internet",
    "Online Enticement of Children for Sexual Acts",
    "Unsolicited Obscene Material Sent to a Child",
)
EVENT_NAMES = ("Login", "Registration", "Purchase", "Upload", "Other", "Unknown")
ADDRESS_TYPES = ("Home", "Business", "Billing", "Shipping", "Technical")
PHONE_TYPES = ("Mobile", "Home", "Business", "Work", "Fax", "Internet", "Recovery")
EMAIL_TYPES = ("Home", "Work", "Business", "Recovery")
ACCOUNT_TYPES = ("Billing", "Linked", "Business", "Creator", "Parent/Guardian", "Other")
FILE_RELEVANCE = ("Reported", "Supplemental Reported")
CLASSIFICATIONS = ("A1", "A2", "B1", "B2")
METADATA_TYPES = ("EXIF", "HASH")
US_STATES = ("", "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL",
             "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE",
             "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD",
             "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "GU", "PR", "VI")
# ISO 3166-1 alpha-2 plus the legacy and special codes the API's country list carries.
COUNTRIES = ("", *sorted({str(c) for c in Locale("en").territories
                          if isinstance(c, str) and len(c) == 2 and c.isalpha()}
                         | {"A1", "A2", "O1", "AN", "AP", "EU", "FX", "XK", "UK"}))
REPORT_ANNOTATIONS = ("sextortion", "csamSolicitation", "minorToMinorInteraction", "spam",
                      "sadisticOnlineExploitation",
                      # tolerated: newer documentation than the schema snapshot (§8.4)
                      "informational", "potentialAggravatingFactors", "instrumentalUse")
FILE_ANNOTATIONS = ("animeDrawingVirtualHentai", "potentialMeme", "viral", "possibleSelfProduction",
                    "physicalHarm", "violenceGore", "bestiality", "liveStreaming", "infant",
                    "generativeAi")


def s(name: str, convert: object = None, *, least: int = 0, most: int | None = 1,
      attrs: tuple[Attr, ...] = ()) -> Child:
    """A text-content child (plain text of the default length unless told)."""
    conv = convert if convert is not None else text()
    return Child(name, Simple(conv, attrs), least, most)  # type: ignore[arg-type]


def c(name: str, kind: Complex, *, least: int = 0, most: int | None = 1) -> Child:
    return Child(name, kind, least, most)


MANY = None
COUNTRY = enum(COUNTRIES)

PHONE = Simple(text(50), (
    Attr("type", enum(PHONE_TYPES)), Attr("verified", boolean),
    Attr("verificationDate", date_or_date_time),
    Attr("countryCallingCode", pattern(r"\+[0-9]{1,3}")), Attr("extension", pattern(r"[0-9]{1,10}")),
))
EMAIL = Simple(text(255), (
    Attr("type", enum(EMAIL_TYPES)), Attr("verified", boolean),
    Attr("verificationDate", date_or_date_time),
))
ADDRESS = Complex((
    s("address", text(255)), s("city", text(100)), s("zipCode", text(20)),
    s("state", enum(US_STATES)), s("nonUsaState", text(100)), s("country", COUNTRY),
), attrs=(Attr("type", enum(ADDRESS_TYPES)),))

_CONTACT_FIELDS = (
    s("firstName", text(100)), s("lastName", text(100)),
    Child("phone", PHONE, 0, MANY), Child("email", EMAIL, 0, MANY), c("address", ADDRESS, most=MANY),
)
CONTACT_PERSON = Complex(_CONTACT_FIELDS)
PERSON = Complex((
    *_CONTACT_FIELDS, s("age", integer(0, 150)),
    s("ageAssertionDiscrepancy", boolean),  # tolerated: sent by ncmec-cybertip (§8.4)
    s("dateOfBirth", a_date),
))

IP_CAPTURE_EVENT = Complex((
    s("ipAddress", ip_address, least=1), s("eventName", enum(EVENT_NAMES)), s("dateTime", date_time),
    s("possibleProxy", boolean), s("port", integer(1, 65535)),
))
DEVICE_ID = Complex((
    s("idType", text(255), least=1), s("idValue", text(2083), least=1),
    s("eventName", enum(EVENT_NAMES)), s("dateTime", date_time),
))
ESTIMATED_LOCATION = Complex((
    s("city", text(255)), s("region", text(255)), s("countryCode", COUNTRY),
), attrs=(Attr("verified", boolean), Attr("timestamp", date_time)))
_DISABLED_ATTRS = (Attr("disabledDate", date_or_date_time), Attr("userNotified", boolean),
                   Attr("userNotifiedDate", date_or_date_time))
TEMP_DISABLED = Simple(boolean, (*_DISABLED_ATTRS, Attr("reenabledDate", date_or_date_time)))
PERM_DISABLED = Simple(boolean, _DISABLED_ATTRS)

ASSOCIATED_ACCOUNT = Complex((
    s("platform", text(256), attrs=(Attr("thirdPartyUser", boolean),)),
    s("firstName", text(256)), s("middleName", text(256)), s("lastName", text(256)),
    s("approximateAge", integer(0, 150)),
    s("ageAssertionDiscrepancy", boolean),  # tolerated: sent by ncmec-cybertip, as in person (§8.4)
    s("dateOfBirth", a_date),
    Child("phone", PHONE, 0, MANY), Child("email", EMAIL, 0, MANY), s("allEmailsReported", boolean),
    c("address", ADDRESS, most=MANY), s("espService", text(256)), s("espIdentifier", text(256)),
    s("profileUrl", url(), most=MANY), s("screenName", text(256)), s("displayName", text(256), most=MANY),
    s("profileBio", text()), s("groupIdentifier", text(256)), s("compromisedAccount", boolean),
    Child("accountTemporarilyDisabled", TEMP_DISABLED), Child("accountPermanentlyDisabled", PERM_DISABLED),
    c("ipCaptureEvent", IP_CAPTURE_EVENT, most=MANY), c("deviceId", DEVICE_ID, most=MANY),
    s("priorCTReport", long_int, most=MANY), s("additionalInfo", text()),
), attrs=(
    Attr("type", enum(ACCOUNT_TYPES)),
    # tolerated: ncmec-cybertip writes the type as accountType and thirdPartyUser here (§8.4)
    Attr("accountType", enum(ACCOUNT_TYPES)), Attr("thirdPartyUser", boolean),
), one_attr_of=("type", "accountType"))


def _party(head: str, *, vehicle: bool, third_party: bool, school: bool, associated: bool,
           notes_repeat: bool) -> Complex:
    """personOrUserReported, intendedRecipient and victim share most of their sequence."""
    items: list[Child | None] = [
        c(head, PERSON, least=1 if head == "victimPerson" else 0),
        s("vehicleDescription", text(300)) if vehicle else None,
        s("espIdentifier", text(255)), s("espService", text(100)), s("compromisedAccount", boolean),
        s("screenName", text(256)), s("displayName", text(256), most=MANY), s("profileUrl", url(), most=MANY),
        s("profileBio", text()), c("ipCaptureEvent", IP_CAPTURE_EVENT, most=MANY),
        c("deviceId", DEVICE_ID, most=MANY),
        s("thirdPartyUserReported", boolean) if third_party else None,
        s("schoolName", text(255)) if school else None,
        s("priorCTReports", long_int, most=MANY),
        None if school else s("groupIdentifier", text(255)),
        Child("accountTemporarilyDisabled", TEMP_DISABLED), Child("accountPermanentlyDisabled", PERM_DISABLED),
        c("estimatedLocation", ESTIMATED_LOCATION), s("allEmailsReported", boolean),
        c("associatedAccount", ASSOCIATED_ACCOUNT, most=MANY) if associated else None,
        s("additionalInfo", text(), most=MANY if notes_repeat else 1),
    ]
    return Complex(tuple(item for item in items if item is not None))


REPORTED_PERSON = _party("personOrUserReportedPerson", vehicle=True, third_party=True, school=False,
                         associated=True, notes_repeat=False)
INTENDED_RECIPIENT = _party("intendedRecipientPerson", vehicle=False, third_party=False, school=False,
                            associated=False, notes_repeat=True)
VICTIM = _party("victimPerson", vehicle=False, third_party=False, school=True, associated=True,
                notes_repeat=False)

_INFO = s("additionalInfo", text())
INTERNET_DETAILS = Complex((
    c("webPageIncident", Complex((s("url", url(), most=MANY), _INFO),
                                 attrs=(Attr("thirdPartyHostedContent", boolean),))),
    c("emailIncident", Complex((Child("emailAddress", EMAIL, 0, MANY), s("content", text()), _INFO))),
    c("newsgroupIncident", Complex((s("name", text(255)), Child("emailAddress", EMAIL, 0, MANY),
                                    s("content", text()), _INFO))),
    c("chatImIncident", Complex((s("chatClient", text(255)), s("chatRoomName", text(255)),
                                 s("content", text()), _INFO))),
    c("onlineGamingIncident", Complex((s("gameName", text(255)), s("console", text(255)),
                                       s("content", text()), _INFO))),
    c("cellPhoneIncident", Complex((Child("phoneNumber", PHONE), s("latitude", double),
                                    s("longitude", double), _INFO))),
    c("nonInternetIncident", Complex((s("locationName", text(255)),
                                      c("incidentAddress", ADDRESS, most=MANY), _INFO))),
    c("peer2peerIncident", Complex((s("client", text(255)), c("ipCaptureEvent", IP_CAPTURE_EVENT, most=MANY),
                                    s("fileNames", text()), _INFO))),
), mode="choice")

INCIDENT_SUMMARY = Complex((
    s("incidentType", enum(INCIDENT_TYPES), least=1), s("platform", text(256)),
    s("escalateToHighPriority", text(3000, non_blank=True)),
    c("reportAnnotations", Complex(tuple(s(n, flag) for n in REPORT_ANNOTATIONS), mode="all")),
    s("incidentDateTime", past_date_time_with_zone, least=1),
    s("incidentDateTimeDescription", text(3000)),
))
LAW_ENFORCEMENT = Complex((
    s("agencyName", text(255), least=1), s("caseNumber", text(100)), c("officerContact", CONTACT_PERSON),
    s("reportedToLe", boolean), s("servedLegalProcessDomestic", boolean),
    s("servedLegalProcessInternational", boolean, attrs=(Attr("fleaCountry", COUNTRY),)),
), attrs=(Attr("fleaCountry", COUNTRY),))  # tolerated: ncmec-cybertip puts fleaCountry here
REPORTER = Complex((
    c("reportingPerson", PERSON, least=1), c("contactPerson", CONTACT_PERSON),
    s("companyTemplate", text()), s("termsOfService", text()), s("legalURL", url(2083)),
))

REPORT = Complex((
    s("batchedReport", empty, attrs=(Attr("reason", enum(("VIRAL_POTENTIAL_MEME",)), required=True),)),
    c("incidentSummary", INCIDENT_SUMMARY, least=1),
    c("internetDetails", INTERNET_DETAILS, most=MANY),
    c("lawEnforcement", LAW_ENFORCEMENT),
    c("reporter", REPORTER, least=1),
    c("personOrUserReported", REPORTED_PERSON, most=MANY),
    c("intendedRecipient", INTENDED_RECIPIENT, most=MANY),
    c("victim", VICTIM, most=MANY),
    s("additionalInfo", text(3000)),
))

_NAME_VALUE = Complex((s("name", text(64), least=1), s("value", text(), least=1)),
                      # tolerated: ncmec-cybertip writes the details type here (§8.4)
                      attrs=(Attr("type", enum(METADATA_TYPES)),))
FILE_DETAILS = Complex((
    s("reportId", long_int, least=1), s("fileId", pattern(r"[0-9A-Za-z_-]{1,64}"), least=1),
    s("fileName", text(2056)), s("originalFileName", text(2056)),
    s("uploadedToEspTimestamp", date_time), s("locationOfFile", url(2083)),
    s("fileViewedByEsp", boolean), s("exifViewedByEsp", boolean), s("publiclyAvailable", boolean),
    s("fileRelevance", enum(FILE_RELEVANCE)),
    s("potentialMeme", boolean),
    c("fileAnnotations", Complex(tuple(s(n, flag) for n in FILE_ANNOTATIONS), mode="all")),
    s("industryClassification", enum(CLASSIFICATIONS)),
    s("originalFileHash", text(256), most=MANY, attrs=(Attr("hashType", text(64), required=True),)),
    # tolerated: one client sends an upload IP event per upload, several in all (§10)
    c("ipCaptureEvent", IP_CAPTURE_EVENT, most=MANY),
    c("deviceId", DEVICE_ID, most=MANY),
    c("details", Complex((c("nameValuePair", _NAME_VALUE, least=1, most=MANY),),
                         attrs=(Attr("type", enum(METADATA_TYPES)),)), most=MANY),
    s("additionalInfo", text(), most=MANY),
), exclusive=(("potentialMeme", "fileAnnotations"),))
