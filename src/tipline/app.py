"""create_app(settings, surface): one codebase, three surfaces (public, partner, staff)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from tipline import __version__, crypto, i18n
from tipline.context import AppContext
from tipline.db import make_engine, make_sessionmaker
from tipline.esp import api as esp_api
from tipline.esp import geo
from tipline.esp import service as esp_service
from tipline.evidence.blobstore import BlobStore
from tipline.matching.worker import HashWorker
from tipline.ratelimit import RateLimiter
from tipline.routing.directory import DirectoryCache
from tipline.settings import Settings, Surface
from tipline.web import errors as web_errors
from tipline.web.locale import locale_from_language
from tipline.web.security import SecurityHeaders


def build_context(settings: Settings, surface: Surface) -> AppContext:
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    blobs = BlobStore(settings.vault_dir)
    return AppContext(
        settings=settings, surface=surface, engine=engine, sessions=sessions,
        keys=crypto.load_keys(settings.keys_dir), blobs=blobs,
        directory=DirectoryCache(sessions),
        followup_limiter=RateLimiter(settings.followup_attempts_per_minute),
        esp_writer=esp_service.writer(sessions),
    )


class ChooseLocale:
    """The page language from Accept-Language, for the whole request. A plain ASGI
    middleware: Starlette's BaseHTTPMiddleware costs a task and a stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = Headers(scope=scope).get("accept-language", "")
            locale = locale_from_language(header)
            scope.setdefault("state", {})["locale"] = locale
            i18n.activate(locale)
        await self.app(scope, receive, send)


def create_app(settings: Settings, surface: Surface | str = Surface.all) -> FastAPI:
    surface = Surface(surface)
    ctx = build_context(settings, surface)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.blobs.ensure()
        ctx.blobs.sweep_tmp()
        ctx.directory.reload()
        purging = None
        interval = settings.esp_purge_interval_seconds
        if surface in (Surface.partner, Surface.all) and interval > 0:
            purging = asyncio.create_task(esp_service.purge_expired_every(ctx, interval))
        if surface in (Surface.partner, Surface.all):
            threading.Thread(target=geo.warm, name="tipline-geo-load", daemon=True).start()
        # Hashing and matching of stored files, in threads and child processes of its own.
        hashing = HashWorker(ctx) if settings.hash_workers > 0 else None
        if hashing is not None:
            hashing.start()
        yield
        if hashing is not None:
            await asyncio.to_thread(hashing.stop)
        if purging is not None:
            purging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purging
        ctx.engine.dispose()

    app = FastAPI(
        title=f"{settings.site_name} API", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None,
        description="Reports of online child sexual exploitation and abuse.",
    )
    app.state.ctx = ctx
    app.add_middleware(SecurityHeaders)

    app.add_middleware(ChooseLocale)
    if surface in (Surface.partner, Surface.all):
        # Outermost of ours: partner API requests skip the page middleware and routing.
        app.add_middleware(esp_api.PartnerLane)

    web_errors.install(app)
    for router in _routers(surface):
        app.include_router(router)
    if surface in (Surface.public, Surface.staff, Surface.all):
        static = resources.files("tipline") / "web" / "static"
        app.mount("/static", StaticFiles(directory=str(static)), name="static")

    _document_report_schema(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "surface": surface.value}

    return app


def _document_report_schema(app: FastAPI) -> None:
    """The report endpoints read their bodies by hand (to stream files into the vault), so
    the report schema is added to the OpenAPI components here."""
    from tipline.reports.schemas import ReportCreate

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        model = ReportCreate.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(model.pop("$defs", {}))
        components["ReportCreate"] = model
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _routers(surface: Surface) -> list:  # type: ignore[type-arg]
    from tipline.intake import api as intake_api
    from tipline.intake import public_views as intake_views
    from tipline.messaging import api as followup_api
    from tipline.messaging import public_views as followup_views
    public = [intake_views.router, followup_views.router, intake_api.router, followup_api.router]
    from tipline.routing import public_views as routing_views

    public.append(routing_views.router)
    from tipline.esp import json_api as esp_json_api

    staff = _staff_routers()
    if surface == Surface.public:
        return public
    partner = [esp_api.router, esp_json_api.router]
    if surface == Surface.partner:
        return partner
    if surface == Surface.staff:
        return staff
    return [*public, *partner, *staff]


def _staff_routers() -> list:  # type: ignore[type-arg]
    from tipline.accounts import views as account_views
    from tipline.cases import views as case_views
    from tipline.intake import views as phone_views
    from tipline.matching import views as bank_views
    from tipline.stats import views as stats_views
    from tipline.triage import views as triage_views

    # Phone entry first: /staff/reports/new must win over /staff/reports/{report_id}.
    return [account_views.router, phone_views.router, triage_views.router, case_views.router,
            stats_views.router, bank_views.router]
