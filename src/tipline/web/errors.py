"""Domain errors mapped once: JSON problem bodies under /api, HTML pages elsewhere."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tipline.errors import InvalidInput, TiplineError
from tipline.i18n import _
from tipline.validation import describe_validation_errors
from tipline.web.pages import render
from tipline.web.staff import SignInRequired

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def problem(status: int, detail: str, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"),
                            "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers=headers)


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", status_code=status,
                  title=_(TITLES.get(status, "Error")), message=message)


def install(app: FastAPI) -> None:
    @app.exception_handler(TiplineError)
    async def _domain(request: Request, exc: TiplineError) -> Response:
        if isinstance(exc, SignInRequired) and not wants_json(request):
            return RedirectResponse("/staff/login", status_code=303)
        if wants_json(request):
            errors = exc.errors if isinstance(exc, InvalidInput) else None
            headers = {"Retry-After": "60"} if exc.status_code == 429 else None
            return problem(exc.status_code, exc.message, errors, headers)
        return error_page(request, exc.status_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = describe_validation_errors(exc.errors())
        detail = "; ".join(f"{field}: {text}" for field, text in errors.items())
        if wants_json(request):
            return problem(422, detail, errors)
        return error_page(request, 422, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
        if exc.status_code == 404:
            detail = _("There is no page at this address.")
        if wants_json(request):
            return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))
        return error_page(request, exc.status_code, detail)
