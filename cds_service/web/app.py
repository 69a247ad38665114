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
from cds_service.web.auth.issuers import TrustedIssuer
from cds_service.web.auth.jwt import JwtVerifier
from cds_service.web.auth.keys import KeyResolver
from cds_service.web.auth.middleware import Authenticate
from cds_service.web.auth.replay import FallbackReplayGuard, InMemoryReplayGuard
from cds_service.web.edge import RequestLimits, SecurityHeaders
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
    audience_base = _audience_base(settings)
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
                replay = FallbackReplayGuard(store.replay_guard, InMemoryReplayGuard())
                verifier = JwtVerifier(KeyResolver(issuers, http), replay)
            app.state.runtime = Runtime(
                settings=settings,
                knowledge=knowledge,
                services=services,
                store=store,
                recorder=CardRecorder(store.cards),
                verifier=verifier,
                audience_base=audience_base,
                fhir=FhirAccess(
                    http=http,
                    allow_open=settings.allow_open_fhir,
                    request_timeout=settings.fhir_request_timeout,
                    deadline=settings.hook_deadline,
                    max_pages=settings.fhir_max_pages,
                    max_per_key=settings.max_resources_per_key,
                    max_per_call=settings.max_resources_per_call,
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
        # offline. /openapi.json documents every answer, only with AIMSS_DOCS_ENABLED=1 (it
        # maps the attack surface); open it in any OpenAPI viewer.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.openapi = openapi.without_422(app)  # type: ignore[method-assign]
    # Added innermost first: a request meets the security headers, CORS, the metrics timer, the
    # JWT check, then the body limits, and only then FastAPI, which reads the body.
    app.add_middleware(
        RequestLimits, max_body_bytes=settings.max_body_bytes, body_timeout=settings.body_timeout
    )
    app.add_middleware(Authenticate)
    app.add_middleware(metrics.HookTimer, services=services.keys())
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)
    app.include_router(routes())
    return app


def _audience_base(settings: Settings) -> str:
    """The base of the URL a JWT's ``aud`` must name: never the request's Host header."""
    base = settings.public_base_url or settings.listen_url
    if base is None and not settings.auth_disabled:
        raise ValueError(
            "JWT checks need the URL clients call: set AIMSS_PUBLIC_BASE_URL "
            "(aimss-cds serve sets AIMSS_LISTEN_URL from --host/--port)"
        )
    return base or ""


def _warn_about_open_settings(settings: Settings, issuers: list[TrustedIssuer]) -> None:
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
    for issuer in issuers:
        if issuer.fhir_servers is None:
            log.warning("issuer %s may name any FHIR server (no fhir_servers in its entry)", issuer.iss)
        else:
            log.info("issuer %s may name only: %s", issuer.iss, ", ".join(issuer.fhir_servers) or "-")
        if issuer.mode != "active":
            log.warning("issuer %s runs in %s mode", issuer.iss, issuer.mode)
