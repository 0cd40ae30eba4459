"""The statistics page for supervisors, and the same numbers as CSV."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from tipline.accounts.permissions import Permission
from tipline.accounts.service import StaffUser
from tipline.i18n import _
from tipline.stats import charts
from tipline.stats import service as stats
from tipline.web.deps import get_session
from tipline.web.pages import render_staff
from tipline.web.staff import requires

router = APIRouter(include_in_schema=False)
PERIODS = (7, 30, 90, 365)


def type_labels() -> dict[str, str]:
    return {"harassment": _("Harassment"), "image_pressure": _("Pressure for images"),
            "sextortion": _("Sextortion"), "csam": _("Sexual images of a child"), "other": _("Other")}


def source_labels() -> dict[str, str]:
    return {"public_web": _("Web form"), "public_api": _("Public API"),
            "partner": _("Partner (ESP)"), "staff_phone": _("Phone")}


def status_labels() -> dict[str, str]:
    return {"received": _("Received"), "in_review": _("In review"), "referred": _("Referred"),
            "investigating": _("Investigating"), "evidence_collected": _("Evidence collected"),
            "prosecution": _("Prosecution"), "closed": _("Closed"),
            "not_actionable": _("Not actionable"), "duplicate": _("Duplicate"),
            "retracted": _("Retracted")}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return _("no reports yet")
    if seconds < 3600:
        return _("%(n)s minutes") % {"n": round(seconds / 60)}
    if seconds < 72 * 3600:
        return _("%(n)s hours") % {"n": f"{seconds / 3600:.1f}"}
    return _("%(n)s days") % {"n": f"{seconds / 86400:.1f}"}


def _daily_chart(chart_id: str, title: str, daily: stats.DailyCounts, labels: dict[str, str]) -> Markup:
    days = [d.isoformat() for d in daily.days]
    totals = ", ".join(f"{labels[c]} {daily.total(c)}" for c in daily.categories)
    desc = _("Stacked bars, one per day from %(start)s to %(end)s. Totals: %(totals)s.") % {
        "start": days[0], "end": days[-1], "totals": totals}
    return charts.stacked_bars(
        chart_id=chart_id, title=title, desc=desc, categories=days,
        series=[charts.Series(labels[c], daily.counts[c]) for c in daily.categories],
        bar_title=lambda day, label, n: f"{day}: {label} {n}")


def _charts(result: stats.Stats) -> dict[str, Markup]:
    statuses = status_labels()
    medians = [(_("Time to triage"), result.to_triage), (_("Time to referral"), result.to_referral)]
    found = {
        "by_type": _daily_chart("chart-type", _("Reports received per day, by type"), result.by_type, type_labels()),
        "by_source": _daily_chart("chart-source", _("Reports received per day, by source"), result.by_source, source_labels()),
        "medians": charts.horizontal_bars(
            chart_id="chart-medians", title=_("Median time to triage and to referral"),
            desc="; ".join(f"{label}: {duration(m.seconds)}" for label, m in medians),
            items=[(label, (m.seconds or 0) / 3600) for label, m in medians],
            value_label=lambda hours: _("%(n)s h") % {"n": f"{hours:.1f}"}),
        "by_status": charts.horizontal_bars(
            chart_id="chart-status", title=_("Where these reports are now"),
            desc="; ".join(f"{statuses[s]}: {n}" for s, n in result.by_status),
            items=[(statuses[s], n) for s, n in result.by_status],
            value_label=lambda n: str(int(n))),
    }
    if result.case_outcomes:
        found["outcomes"] = charts.horizontal_bars(
            chart_id="chart-outcomes", title=_("Outcomes of referrals"),
            desc="; ".join(f"{o}: {n}" for o, n in result.case_outcomes),
            items=list(result.case_outcomes), value_label=lambda n: str(int(n)))
    return found


@router.get("/staff/stats", response_class=HTMLResponse)
def stats_page(
    request: Request,
    days: int = Query(stats.DEFAULT_DAYS, ge=stats.MIN_DAYS, le=stats.MAX_DAYS),
    staff: StaffUser = Depends(requires(Permission.stats_view)),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    result = stats.collect(session, days=days)
    return render_staff(
        request, "stats/index.html", stats=result, charts=_charts(result), days=days,
        periods=PERIODS, types=type_labels(), sources=source_labels(), statuses=status_labels(),
        duration=duration, min_days=stats.MIN_DAYS, max_days=stats.MAX_DAYS,
    )


@router.get("/staff/stats.csv")
def stats_csv(
    days: int = Query(stats.DEFAULT_DAYS, ge=stats.MIN_DAYS, le=stats.MAX_DAYS),
    staff: StaffUser = Depends(requires(Permission.stats_view)),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    result = stats.collect(session, days=days)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(stats.csv_rows(result))
    name = f"tipline-stats-{result.period.start.isoformat()}-to-{result.period.end.isoformat()}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
