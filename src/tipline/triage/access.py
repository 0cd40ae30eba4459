"""Object access in one place: NotFound both for missing and for forbidden rows."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from tipline.accounts.permissions import Permission, Role
from tipline.accounts.service import StaffUser
from tipline.errors import NotFound
from tipline.evidence.models import EvidenceFile
from tipline.i18n import _
from tipline.reports.models import Report


def access_report(session: Session, staff: StaffUser, report_id: uuid.UUID) -> Report:
    report = session.get(Report, report_id)
    if report is None or not _may_see(session, staff, report):
        raise NotFound(_("There is no page at this address."))
    return report


def access_evidence(session: Session, staff: StaffUser, evidence_id: uuid.UUID) -> EvidenceFile:
    item = session.get(EvidenceFile, evidence_id)
    if item is None:
        raise NotFound(_("There is no page at this address."))
    access_report(session, staff, item.report_id)
    return item


def _may_see(session: Session, staff: StaffUser, report: Report) -> bool:
    if staff.role == Role.agency_officer:
        if staff.agency_id is None:
            return False
        # Imported here: cases builds on triage, so a module-level import would be circular.
        from tipline.cases import service as cases

        return bool(cases.agency_has_report(session, staff.agency_id, report.id))
    return staff.can(Permission.report_view)
