"""The public report form and its receipt."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from tipline.errors import InvalidInput, PermissionDenied
from tipline.i18n import _
from tipline.intake.forms import form_to_data, validate_report
from tipline.intake.service import submit_report
from tipline.reports import labels
from tipline.reports.codenames import entropy_bits
from tipline.reports.enums import Source
from tipline.web import csrf
from tipline.web.deps import get_ctx
from tipline.web.multipart import StreamedForm, parse_streaming_form
from tipline.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return render(request, "intake/home.html", incident_types=labels.incident_types())


@router.get("/help", response_class=HTMLResponse)
def help_page(request: Request) -> Response:
    return render(request, "intake/help.html")


def _form_page(request: Request, form: StreamedForm | None, errors: dict[str, str],
               status_code: int, message: str = "") -> Response:
    ctx = get_ctx(request)
    values = form.fields if form else {}
    return render(
        request, "intake/report_form.html", status_code=status_code,
        values=values, errors=errors, message=message, choices=labels.all_choices(),
        max_files=ctx.settings.max_files, max_mb=ctx.settings.max_file_bytes // (1024 * 1024),
        max_text=ctx.settings.max_text_chars,
    )


@router.get("/report", response_class=HTMLResponse)
def report_form(request: Request) -> Response:
    values: dict[str, list[str]] = {}
    country = request.cookies.get("tl_country", "")
    if country:
        values = {"reporter_country": [country], "child_country": [country]}
    form = StreamedForm(fields=values)
    return _form_page(request, form, {}, 200)


@router.post("/report", response_class=HTMLResponse)
async def submit(request: Request) -> Response:
    ctx = get_ctx(request)
    form = await parse_streaming_form(request, ctx)
    try:
        csrf.check(request, form.first(csrf.FIELD))
        if form.errors:
            raise InvalidInput(_("Some answers need another look."), errors=form.errors)
        data = validate_report(form_to_data(form.fields), ctx.settings.max_text_chars)
    except PermissionDenied as exc:
        had_files = bool(form.blobs)
        form.discard()
        return _form_page(request, form, {"form": exc.message}, 403, _files_note(had_files))
    except InvalidInput as exc:
        had_files = bool(form.blobs) or "files" in exc.errors
        form.discard()
        return _form_page(request, form, exc.errors, 422, _files_note(had_files))
    receipt = await run_in_threadpool(submit_report, ctx, data, form.blobs, source=Source.public_web)
    return render(
        request, "intake/receipt.html", status_code=201, receipt=receipt,
        codename_bits=int(entropy_bits(ctx.settings.codename_words)),
        status_text=labels.coarse_status(receipt.status.value),
        places=ctx.directory.organisations(receipt.country)[:6] if receipt.country else (),
        place_country=ctx.directory.emergency(receipt.country) if receipt.country else None,
    )


def _files_note(had_files: bool) -> str:
    if not had_files:
        return ""
    return _("For your safety, files you chose were not kept. Please choose them again before you send.")
