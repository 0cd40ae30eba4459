"""The statistics page: the numbers it shows and exports are the reports' own, and only
supervisors and admins see them."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import report_json
from tipline import clock
from tipline.accounts.permissions import Role
from tipline.context import AppContext
from tipline.db import transaction
from tipline.reports.enums import Source
from tipline.reports.models import Report
from tipline.reports.states import ReportStatus
from tipline.stats import charts


def _file(client: TestClient, ctx: AppContext, *, day: date, status: ReportStatus,
          source: Source = Source.public_api, triage_h: float | None = None,
          referral_h: float | None = None, confirmed: list[str] | None = None,
          **overrides: Any) -> str:
    response = client.post("/api/v1/reports", json=report_json(**overrides))
    assert response.status_code == 201, response.text
    reference = response.json()["reference"]
    created = datetime.combine(day, time(0, 5), tzinfo=UTC)
    with transaction(ctx.sessions) as session:
        report = session.execute(select(Report).where(Report.reference == reference)).scalar_one()
        report.created_at = created
        report.status = status
        report.source = source
        report.confirmed_types = confirmed
        report.triaged_at = created + timedelta(hours=triage_h) if triage_h is not None else None
        report.referred_at = created + timedelta(hours=referral_h) if referral_h is not None else None
    return reference


@pytest.fixture
def seeded(client: TestClient, ctx: AppContext) -> date:
    today = clock.now().date()
    _file(client, ctx, day=today, status=ReportStatus.referred, triage_h=2, referral_h=10,
          incident_types=["sextortion"])
    _file(client, ctx, day=today - timedelta(days=1), status=ReportStatus.in_review, triage_h=4,
          incident_types=["csam", "other"])
    _file(client, ctx, day=today - timedelta(days=3), status=ReportStatus.closed, source=Source.partner,
          triage_h=6, referral_h=20, incident_types=["harassment"])
    # Reported as "other", confirmed as sextortion by an analyst: counts as sextortion.
    _file(client, ctx, day=today, status=ReportStatus.duplicate, confirmed=["sextortion"],
          incident_types=["other"])
    # Outside the default 30 days.
    _file(client, ctx, day=today - timedelta(days=40), status=ReportStatus.not_actionable,
          source=Source.staff_phone, triage_h=8, incident_types=["image_pressure"])
    return today


def _cell(html: str, attribute: str, value: str, table: str) -> int:
    section = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    match = re.search(rf'{attribute}="{value}">(\d+)<', section)
    assert match, f"{value} not in {table}"
    return int(match.group(1))


def test_supervisor_sees_the_numbers(staff_client: Any, seeded: date) -> None:
    supervisor = staff_client(Role.supervisor)
    page = supervisor.get("/staff/stats")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'id="stats-received">4<', html)
    # Triage: 2, 4 and 6 hours -> 4.0; referral: 10 and 20 hours -> 15.0.
    assert re.search(r'id="stats-triage">4\.0 hours', html)
    assert re.search(r'id="stats-referral">15\.0 hours', html)
    assert "3 reports triaged" in html and "2 reports referred" in html
    totals = {t: _cell(html, "data-total", t, "table-type")
              for t in ("sextortion", "csam", "other", "harassment", "image_pressure")}
    assert totals == {"sextortion": 2, "csam": 1, "other": 1, "harassment": 1, "image_pressure": 0}
    assert _cell(html, "data-total", "public_api", "table-source") == 3
    assert _cell(html, "data-total", "partner", "table-source") == 1
    assert _cell(html, "data-total", "staff_phone", "table-source") == 0
    statuses = {s: _cell(html, "data-status", s, "table-status")
                for s in ("referred", "in_review", "closed", "duplicate", "not_actionable")}
    assert statuses == {"referred": 1, "in_review": 1, "closed": 1, "duplicate": 1, "not_actionable": 0}
    # One row per day of the period, today included.
    assert html.count('<th scope="row"><time datetime=') == 2 * 30
    assert f'<time datetime="{seeded.isoformat()}">' in html
    assert f'<time datetime="{(seeded - timedelta(days=30)).isoformat()}">' not in html
    # Charts: inline SVG images with a name and a description, no script anywhere.
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"') == 4
    assert '<title id="chart-type-title">Reports received per day, by type</title>' in html
    assert "Totals: Harassment 1, Pressure for images 0, Sextortion 2" in html
    assert f"<title>{seeded.isoformat()}: Sextortion 2</title>" in html
    assert "<script>" not in html.split("</head>", 1)[1]


def test_a_longer_period_takes_in_older_reports(staff_client: Any, seeded: date) -> None:
    admin = staff_client(Role.admin)
    html = admin.get("/staff/stats", params={"days": 90}).text
    assert re.search(r'id="stats-received">5<', html)
    # Triage: 2, 4, 6 and 8 hours -> the middle two average to 5.0.
    assert re.search(r'id="stats-triage">5\.0 hours', html)
    assert _cell(html, "data-status", "not_actionable", "table-status") == 1
    assert _cell(html, "data-total", "image_pressure", "table-type") == 1


def test_csv_has_the_same_numbers(staff_client: Any, seeded: date) -> None:
    supervisor = staff_client(Role.supervisor)
    response = supervisor.get("/staff/stats.csv", params={"days": 7})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    start = seeded - timedelta(days=6)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="tipline-stats-{start.isoformat()}-to-{seeded.isoformat()}.csv"')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["metric", "day", "category", "value"]
    values = {(m, d, c): v for m, d, c, v in rows[1:]}
    assert values[("period_start", start.isoformat(), "")] == ""
    assert values[("reports_received", "", "")] == "4"
    assert values[("reports_by_type", seeded.isoformat(), "sextortion")] == "2"
    assert values[("reports_by_type", (seeded - timedelta(days=1)).isoformat(), "csam")] == "1"
    assert values[("reports_by_type", (seeded - timedelta(days=2)).isoformat(), "csam")] == "0"
    assert values[("reports_by_source", (seeded - timedelta(days=3)).isoformat(), "partner")] == "1"
    assert values[("median_hours_to_triage", "", "")] == "4.00"
    assert values[("median_hours_to_referral", "", "")] == "15.00"
    assert values[("reports_counted_to_referral", "", "")] == "2"
    assert values[("reports_by_status", "", "duplicate")] == "1"
    assert sum(1 for r in rows if r[0] == "reports_by_type") == 7 * 5


def test_empty_period(staff_client: Any) -> None:
    html = staff_client(Role.supervisor).get("/staff/stats").text
    assert re.search(r'id="stats-received">0<', html)
    assert "no reports yet" in html


@pytest.mark.parametrize("path", ["/staff/stats", "/staff/stats.csv"])
def test_only_supervisors_and_admins(client: TestClient, staff_client: Any, path: str) -> None:
    assert staff_client(Role.analyst).get(path).status_code == 404
    client.follow_redirects = False
    anonymous = client.get(path)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/staff/login"
    supervisor = staff_client(Role.supervisor)
    assert supervisor.get(path, params={"days": 6}).status_code == 422
    assert supervisor.get(path, params={"days": 366}).status_code == 422
    assert supervisor.get(path, params={"days": 365}).status_code == 200


def test_chart_text_is_escaped_and_the_axis_is_round() -> None:
    svg = charts.horizontal_bars(chart_id="c", title="<b>t</b>", desc="a & b",
                                 items=[("<i>x</i>", 3.0)], value_label=str)
    assert "<b>" not in svg and "&lt;b&gt;t&lt;/b&gt;" in svg and "a &amp; b" in svg
    assert "&lt;i&gt;x&lt;/i&gt;" in svg
    assert [charts.nice_ceiling(v) for v in (0, 0.7, 3, 7, 12, 230)] == [1, 1, 5, 10, 20, 250]


def test_every_string_is_translatable(staff_client: Any, seeded: date) -> None:
    from tests.test_i18n import PSEUDO, untranslated

    page = staff_client(Role.supervisor).get("/staff/stats", headers=PSEUDO)
    assert page.status_code == 200
    # Data, not interface text: the site's name and the test user's display name.
    assert untranslated(page.text, {"Tipline", "Test", "supervisor"}) == []
