"""The FastAPI app: start-up (knowledge, issuers, store, FHIR access), CORS and metrics middleware.

``create_app`` is the public factory. The routes (``routes``) translate HTTP to the hook
pipeline (``cds_service.hooks.pipeline``), where everything clinical happens.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from cds_service import configuration, logs, metrics
from cds_service.fhir.gather import FhirAccess
from cds_service.hooks.card_recorder import CardRecorder
from cds_service.hooks.services import build_services
from cds_service.settings import Settings
from cds_service.store import Store
from cds_service.web import openapi
from cds_service.web.auth.jwt import JwtVerifier
from cds_service.web.auth.keys import KeyResolver
from cds_service.web.errors import install_error_handlers
from cds_service.web.routes import Runtime, routes

log = logging.getLogger("aimss_cds")

# httpx/httpcore log request URLs (patient ids) below WARNING: dropped whatever the level set.
logs.install()

Clock = Callable[[], date]


def utc_today() -> date:
    return datetime.now(UTC).date()


def create_app(settings: Settings | None = None, *, clock: Clock = utc_today) -> FastAPI:
    """Build the service; knowledge and configuration problems raise ``ConfigurationError``
    here, before serving."""
    settings = settings or configuration.load_settings()
    knowledge = configuration.knowledge(settings)
    issuers = configuration.trusted_issuers(settings)
    _warn_about_open_settings(settings, issuers)
    services = build_services(knowledge)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            hash_key = settings.patient_hash_key
            store = await run_in_threadpool(
                Store, settings.database_url, hash_key.get_secret_value() if hash_key else None
            )
            verifier = None
            if not settings.auth_disabled:
                verifier = JwtVerifier(KeyResolver(issuers, http), store.replay_guard)
            app.state.runtime = Runtime(
                settings=settings,
                knowledge=knowledge,
                services=services,
                store=store,
                recorder=CardRecorder(store.cards),
                verifier=verifier,
                fhir=FhirAccess(
                    http=http,
                    allow_open=settings.allow_open_fhir,
                    request_timeout=settings.fhir_request_timeout,
                    deadline=settings.hook_deadline,
                    max_pages=settings.fhir_max_pages,
                ),
                clock=clock,
            )
            # What start-up built (knowledge, models, libraries) lives as long as the worker.
            # Frozen, it is skipped by the collector's full passes, which otherwise walk it all
            # and pause a hook call for tens of milliseconds every few calls.
            gc.freeze()
            try:
                async with app.state.runtime.recorder.running():
                    yield
            finally:
                store.close()

    app = FastAPI(
        title="AIMSS CDS",
        version="0.1.0",
        summary="CDS Hooks 2.0 service for aromatase-inhibitor-associated musculoskeletal symptoms",
        lifespan=lifespan,
        # No /docs or /redoc: their pages load Swagger UI and ReDoc from a CDN and are blank
        # offline. /openapi.json documents every answer; open it in any OpenAPI viewer.
        docs_url=None,
        redoc_url=None,
    )
    app.openapi = openapi.without_422(app)  # type: ignore[method-assign]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(metrics.HookTimer, services=services.keys())
    install_error_handlers(app)
    app.include_router(routes())
    return app


def _warn_about_open_settings(settings: Settings, issuers: list[Any]) -> None:
    if settings.auth_disabled:
        log.warning(
            "!!! AIMSS_AUTH_DISABLED=1: JWT verification is OFF. Any caller can reach this "
            "service. Development only; never expose it to a network. !!!"
        )
    elif not issuers:
        log.warning(
            "No trusted JWT issuers (AIMSS_TRUSTED_ISSUERS_FILE unset): every call will get 401."
        )
    if settings.allow_open_fhir:
        log.warning("AIMSS_ALLOW_OPEN_FHIR=1: FHIR calls without a token and over plain http allowed.")
