"""Who may do what: permissions as values, roles as sets of them, checked in one place."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    analyst = "analyst"
    agency_officer = "agency_officer"


class Permission(StrEnum):
    queue_view = "triage:queue:view"
    report_view = "report:view"
    report_edit = "report:edit"
    report_assign = "report:assign"
    report_merge = "report:merge"
    report_contact_view = "report:contact:view"
    report_enter_phone = "report:phone:create"
    evidence_reveal = "evidence:reveal"
    message_reporter = "report:message:create"
    referral_create = "case:referral:create"
    case_view = "case:view"
    case_update = "case:update"
    case_evidence_record = "case:evidence:record"
    case_export = "case:export"
    stats_view = "stats:view"
    users_manage = "accounts:users:manage"
    agencies_manage = "accounts:agencies:manage"
    banks_manage = "matching:banks:manage"


P = Permission
_ANALYST = frozenset({
    P.queue_view, P.report_view, P.report_edit, P.report_assign, P.report_merge,
    P.report_contact_view, P.report_enter_phone, P.evidence_reveal, P.message_reporter,
    P.referral_create, P.case_view, P.case_export,
})
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.analyst: _ANALYST,
    Role.supervisor: _ANALYST | {P.stats_view},
    Role.admin: _ANALYST | {P.stats_view, P.users_manage, P.agencies_manage, P.banks_manage},
    # An officer works only on referrals made to their agency (see cases.access).
    Role.agency_officer: frozenset({
        P.case_view, P.case_update, P.case_evidence_record, P.case_export,
        P.message_reporter, P.evidence_reveal, P.report_contact_view,
    }),
}


def has_permission(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
