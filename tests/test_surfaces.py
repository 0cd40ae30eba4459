"""Each surface serves exactly its own routes, so nothing appears on the wrong one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from tipline.app import create_app
from tipline.settings import Settings

PUBLIC = {
    ("GET", "/"), ("GET", "/help"), ("GET", "/report"), ("POST", "/report"),
    ("GET", "/followup"), ("POST", "/followup"), ("GET", "/followup/report"),
    ("POST", "/followup/report"), ("POST", "/followup/signout"),
    ("GET", "/where-to-report"), ("GET", "/where-to-report/{country}"), ("GET", "/country"),
    ("POST", "/api/v1/reports"), ("POST", "/api/v1/followup/session"),
    ("GET", "/api/v1/followup"), ("POST", "/api/v1/followup/messages"),
    ("POST", "/api/v1/followup/files"), ("DELETE", "/api/v1/followup/session"),
    ("GET", "/healthz"), ("GET", "/openapi.json"), ("MOUNT", "/static"),
}
COMMON = {("GET", "/healthz"), ("GET", "/openapi.json")}
PARTNER = COMMON | {
    ("GET", "/ispws/status"), ("GET", "/ispws/xsd"), ("POST", "/ispws/submit"),
    ("POST", "/ispws/upload"), ("POST", "/ispws/fileinfo"), ("POST", "/ispws/finish"),
    ("POST", "/ispws/retract"),
    ("GET", "/api/v1/partner/status"), ("POST", "/api/v1/partner/reports"),
    ("POST", "/api/v1/partner/reports/{report_id}/files"),
    ("POST", "/api/v1/partner/reports/{report_id}/files/{file_id}/details"),
    ("POST", "/api/v1/partner/reports/{report_id}/hashes"),
    ("POST", "/api/v1/partner/reports/{report_id}/finish"),
    ("POST", "/api/v1/partner/reports/{report_id}/retract"),
}
STAFF = COMMON | {
    ("GET", "/staff/login"), ("POST", "/staff/login"), ("GET", "/staff/2fa"),
    ("POST", "/staff/2fa"), ("POST", "/staff/logout"),
    ("GET", "/staff/admin/users"), ("POST", "/staff/admin/users"),
    ("POST", "/staff/admin/users/{user_id}/{action}"),
    ("GET", "/staff/admin/agencies"), ("POST", "/staff/admin/agencies"),
    ("GET", "/staff/queue"), ("GET", "/staff/reports/{report_id}"),
    ("GET", "/staff/reports/{report_id}/contact"), ("POST", "/staff/reports/{report_id}/{action}"),
    ("GET", "/staff/evidence/{evidence_id}/preview"), ("POST", "/staff/evidence/{evidence_id}/reveal"),
    ("GET", "/staff/evidence/{evidence_id}/original"), ("MOUNT", "/static"),
    ("GET", "/staff/reports/new"), ("POST", "/staff/reports/new"),
    ("GET", "/staff/stats"), ("GET", "/staff/stats.csv"),
    ("GET", "/staff/reports/{report_id}/referrals"), ("POST", "/staff/reports/{report_id}/referrals/new"),
    ("GET", "/staff/cases"), ("GET", "/staff/cases/signing-key"), ("GET", "/staff/cases/{referral_id}"),
    ("POST", "/staff/cases/{referral_id}/accept"), ("POST", "/staff/cases/{referral_id}/decline"),
    ("POST", "/staff/cases/{referral_id}/status"), ("POST", "/staff/cases/{referral_id}/items"),
    ("POST", "/staff/cases/{referral_id}/items/{item_id}/transfer"),
    ("POST", "/staff/cases/{referral_id}/package"),
    ("GET", "/staff/banks"), ("POST", "/staff/banks"), ("GET", "/staff/banks/{bank_id}"),
    ("POST", "/staff/banks/{bank_id}/enabled"), ("POST", "/staff/banks/{bank_id}/threshold"),
    ("POST", "/staff/banks/{bank_id}/imports"), ("GET", "/staff/banks/{bank_id}/imports/{import_id}"),
    ("GET", "/staff/banks/{bank_id}/export.csv"), ("GET", "/staff/banks/{bank_id}/export.json"),
}
EXPECTED = {
    "public": PUBLIC,
    "all": PUBLIC | STAFF | PARTNER,
    "partner": PARTNER,
    "staff": STAFF,
}


def flatten(routes: list[Any]) -> list[Any]:
    """Newer FastAPI keeps included routers as one entry each; look inside them."""
    flat: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        flat.extend(flatten(inner.routes) if inner is not None else [route])
    return flat


def routes(settings: Settings, surface: str) -> set[tuple[str, str]]:
    app = create_app(settings, surface)
    found: set[tuple[str, str]] = set()
    for route in flatten(list(app.routes)):
        if isinstance(route, Mount):
            found.add(("MOUNT", route.path))
        elif isinstance(route, APIRoute):
            found.update((method, route.path) for method in route.methods - {"HEAD"})
        else:
            methods = getattr(route, "methods", None) or {"GET"}
            found.update((method, route.path) for method in methods - {"HEAD"})
    return found


@pytest.mark.parametrize("surface", sorted(EXPECTED))
def test_surface_routes_are_exactly_the_expected_ones(settings: Settings, surface: str) -> None:
    assert routes(settings, surface) == EXPECTED[surface]
