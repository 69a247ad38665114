"""The HTTP edge: routes, CORS, JWT checks and error answers of the CDS Hooks API.

Everything clinical happens in ``facts``/``rules``/``cards``; this module parses, gathers,
answers, and logs one line per call correlated by ``hookInstance`` (never patient data,
tokens or JWTs).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service import logs, metrics
from cds_service.hooks.alert_fatigue import without_quieted
from cds_service.web.auth.jwt import AuthError, JwtVerifier, KeyResolver, load_trusted_issuers
from cds_service.hooks.card_recorder import CardRecorder
from cds_service.clinical.cards import render_cards
from cds_service.fhir.gather import FhirAccess, gather
from cds_service.hooks.intake import MALFORMED_DATA, read_facts
from cds_service.knowledge.loader import OVERRIDE_SYSTEM, Knowledge, load_knowledge
from cds_service.hooks.protocol import (
    Discovery,
    FeedbackRequest,
    HookRequest,
    HookResponse,
    describe_validation_errors,
    operation_outcome,
)
from cds_service.web.auth.public_sandbox import with_public_sandbox
from cds_service.hooks.services import CdsService, build_services
from cds_service.settings import Settings
from cds_service.store import Store

log = logging.getLogger("aimss_cds")

# httpx/httpcore log request URLs (patient ids) below WARNING: dropped whatever the level set.
logs.install()

Clock = Callable[[], date]


def utc_today() -> date:
    return datetime.now(UTC).date()


class ProblemResponse(JSONResponse):
    """A non-2xx answer with an OperationOutcome body."""

    def __init__(self, status_code: int, diagnostics: str, code: str = "invalid") -> None:
        super().__init__(operation_outcome(diagnostics, code), status_code=status_code)


class Unauthorized(Exception):
    """Any JWT failure: answered with a bare 401, the reason only in the server log."""


@dataclass
class Runtime:
    settings: Settings
    knowledge: Knowledge
    services: dict[str, CdsService]
    store: Store
    recorder: CardRecorder
    verifier: JwtVerifier | None
    fhir: FhirAccess
    clock: Clock


def create_app(settings: Settings | None = None, *, clock: Clock = utc_today) -> FastAPI:
    """Build the service; knowledge and configuration problems raise here, before serving."""
    settings = settings or Settings()
    knowledge = load_knowledge(settings.profiles_dir, settings.rules_file)
    issuers = load_trusted_issuers(settings.trusted_issuers_file) if settings.trusted_issuers_file else []
    if settings.trust_public_sandbox:
        issuers = with_public_sandbox(issuers)
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
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(metrics.HookTimer, services=services.keys())
    _install_error_handlers(app)
    app.include_router(_routes())
    return app


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def _authenticate(request: Request) -> None:
    runtime = _runtime(request)
    if runtime.verifier is None:
        return
    base = runtime.settings.public_base_url or str(request.base_url).rstrip("/")
    audience = base + request.url.path
    try:
        await runtime.verifier.verify(request.headers.get("authorization"), audience)
    except AuthError as error:
        log.warning("JWT rejected: %s (path %s)", error.reason, request.url.path)
        metrics.AUTH_FAILURES.labels(error.reason).inc()
        raise Unauthorized from error


def _routes() -> APIRouter:
    router = APIRouter()
    authenticated = [Depends(_authenticate)]

    @router.get("/cds-services", dependencies=authenticated, response_model=Discovery)
    async def discovery(request: Request) -> Response:
        services = _runtime(request).services.values()
        body = Discovery(services=[service.describe() for service in services])
        return JSONResponse(body.model_dump(mode="json", exclude_none=True))

    @router.post("/cds-services/{service_id}", dependencies=authenticated, response_model=HookResponse)
    async def call_service(service_id: str, hook_request: HookRequest, request: Request) -> Response:
        runtime = _runtime(request)
        started = time.perf_counter()
        logs.bind_hook_instance(hook_request.hookInstance)
        service = runtime.services.get(service_id)
        if service is None:
            return ProblemResponse(404, f"No CDS service with id {service_id!r}", "not-found")
        if hook_request.hook != service.hook:
            _log_call(service, 400, started, {}, [])
            return ProblemResponse(
                400, f"Service {service_id!r} answers the {service.hook!r} hook, not {hook_request.hook!r}"
            )
        try:
            context = service.context_model.model_validate(hook_request.context)
        except ValidationError as error:
            _log_call(service, 400, started, {}, [])
            return ProblemResponse(400, "Invalid context: " + describe_validation_errors(
                [{**e, "loc": ("context", *e["loc"])} for e in error.errors()]
            ))
        if not service.needs_data(context, runtime.knowledge):
            _log_call(service, 200, started, {}, [])
            return JSONResponse({"cards": []})
        stage = metrics.STAGE_SECONDS
        with stage.labels(service.id, "gather").time():
            gathered = await gather(hook_request, service.prefetch, runtime.fhir)
        today = runtime.clock()
        try:
            with stage.labels(service.id, "facts").time():
                facts = read_facts(gathered, service, runtime.knowledge, today)
            with stage.labels(service.id, "rules").time():
                findings = service.evaluate(facts, runtime.knowledge, context)
        except MALFORMED_DATA as error:
            # The facts read FHIR JSON as the spec shapes it; a wrongly typed element is the
            # data's fault, answered as such rather than as a 500.
            log.warning("malformed FHIR data: %s", type(error).__name__)
            _log_call(service, 400, started, gathered.unavailable, [])
            return ProblemResponse(
                400,
                "The prefetch or FHIR server data is not valid FHIR R4 JSON "
                "(an element has the wrong type)",
            )
        metrics.count_keys(service.prefetch, gathered.fetched, gathered.unavailable)
        if service.sources_of(gathered.unavailable) & service.required_sources:
            reasons = ", ".join(f"{key} ({why})" for key, why in sorted(gathered.unavailable.items()))
            _log_call(service, 412, started, gathered.unavailable, [])
            return ProblemResponse(
                412,
                f"Data the service needs could be had neither from prefetch nor from the FHIR server: {reasons}",
                "processing",
            )
        patient_key = runtime.store.patients.key(hook_request.fhirServer, context.patientId)
        with stage.labels(service.id, "snooze").time():
            findings = await without_quieted(
                findings, runtime.store.cards, patient_key, today, runtime.knowledge.rules.snooze
            )
        with stage.labels(service.id, "cards").time():
            cards = render_cards(findings, runtime.knowledge, context.patientId, today)
        metrics.count_cards(service.id, cards)
        _log_call(service, 200, started, gathered.unavailable, [c.source.topic.code for c in cards if c.source.topic])
        # Recorded in the next batch: feedback on these cards can then quiet their topic.
        runtime.recorder.add(service.id, cards, patient_key, today)
        return Response(HookResponse(cards=cards).to_json_bytes(), media_type="application/json")

    @router.post("/cds-services/{service_id}/feedback", dependencies=authenticated)
    async def feedback(service_id: str, body: FeedbackRequest, request: Request) -> Response:
        runtime = _runtime(request)
        if service_id not in runtime.services:
            return ProblemResponse(404, f"No CDS service with id {service_id!r}", "not-found")
        await runtime.recorder.flush()  # so an override here finds its card at once
        stored = await run_in_threadpool(
            runtime.store.feedback.add, service_id, body.feedback, runtime.clock()
        )
        metrics.count_feedback(
            service_id, body.feedback, OVERRIDE_SYSTEM, dict(runtime.knowledge.override_reasons)
        )
        log.info("feedback service=%s items=%d new=%d", service_id, len(body.feedback), stored)
        return Response(status_code=200)

    @router.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """No JWT (scrapers carry none) and no patient data; keep it off public networks."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @router.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", include_in_schema=False)
    async def ready(request: Request) -> Response:
        try:
            await run_in_threadpool(_runtime(request).store.ping)
        except Exception as error:  # any store failure means "not ready", never a 500
            log.error("store unreachable: %s", type(error).__name__)
            return ProblemResponse(503, "feedback store unreachable", "transient")
        return JSONResponse({"status": "ready", "knowledge": "loaded", "store": "reachable"})

    return router


def _log_call(
    service: CdsService,
    status: int,
    started: float,
    unavailable: dict[str, str],
    topics: list[str],
) -> None:
    log.info(
        "hook service=%s status=%d ms=%.1f cards=%s unavailable=%s",
        service.id,
        status,
        (time.perf_counter() - started) * 1000,
        ",".join(topics) or "-",
        ",".join(f"{k}:{v}" for k, v in sorted(unavailable.items())) or "-",
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> Response:
        return ProblemResponse(400, "Malformed request: " + describe_validation_errors(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported"}.get(error.status_code, "processing")
        return ProblemResponse(error.status_code, str(error.detail), code)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, __: Unauthorized) -> Response:
        return Response(status_code=401)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.error("unexpected %s on %s", type(error).__name__, request.url.path)
        return ProblemResponse(500, "Internal error; see the service log", "exception")


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
