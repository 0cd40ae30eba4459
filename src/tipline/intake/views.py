"""Staff entry of a report received by phone: the same form and rules as the public site."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from tipline.accounts.permissions import Permission
from tipline.accounts.service import StaffUser
from tipline.errors import InvalidInput, PermissionDenied
from tipline.i18n import _
from tipline.intake.forms import form_to_data, validate_report
from tipline.intake.service import submit_report
from tipline.reports import labels
from tipline.reports.enums import Source
from tipline.web import csrf
from tipline.web.deps import get_ctx
from tipline.web.multipart import StreamedForm, parse_streaming_form
from tipline.web.pages import render_staff
from tipline.web.staff import requires

router = APIRouter(include_in_schema=False)


def _form(request: Request, form: StreamedForm | None, errors: dict[str, str],
          status_code: int = 200, message: str = "") -> Response:
    ctx = get_ctx(request)
    return render_staff(
        request, "staff/phone_report.html", status_code=status_code,
        values=form.fields if form else {}, errors=errors, message=message,
        choices=labels.all_choices(), countries=ctx.directory.country_choices(),
        max_files=ctx.settings.max_files, max_mb=ctx.settings.max_file_bytes // (1024 * 1024),
        max_text=ctx.settings.max_text_chars,
    )


@router.get("/staff/reports/new", response_class=HTMLResponse)
def phone_form(request: Request,
               staff: StaffUser = Depends(requires(Permission.report_enter_phone))) -> Response:
    return _form(request, None, {})


@router.post("/staff/reports/new", response_class=HTMLResponse)
async def phone_submit(request: Request,
                       staff: StaffUser = Depends(requires(Permission.report_enter_phone))) -> Response:
    ctx = get_ctx(request)
    form = await parse_streaming_form(request, ctx)
    try:
        csrf.check(request, form.first(csrf.FIELD))
        if form.errors:
            raise InvalidInput(_("Some answers need another look."), errors=form.errors)
        data = validate_report(form_to_data(form.fields), ctx.settings.max_text_chars)
    except (InvalidInput, PermissionDenied) as exc:
        form.discard()
        errors = exc.errors if isinstance(exc, InvalidInput) else {"form": exc.message}
        return _form(request, form, errors, exc.status_code)
    receipt = await run_in_threadpool(submit_report, ctx, data, form.blobs,
                                      source=Source.staff_phone, actor=staff.actor)
    return render_staff(request, "staff/phone_receipt.html", status_code=201, receipt=receipt)
