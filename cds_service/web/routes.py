"""The routes of the CDS Hooks API. They translate HTTP to the hook pipeline and back, and log
one line per hook call correlated by ``hookInstance`` (never patient data, tokens or JWTs)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from cds_service import logs, metrics
from cds_service.fhir.gather import FhirAccess
from cds_service.hooks.card_recorder import CardRecorder
from cds_service.hooks.pipeline import HookResult, Outcome, StepFailed, run_hook
from cds_service.hooks.protocol import (
    Card,
    Discovery,
    FeedbackRequest,
    HookRequest,
    HookResponse,
)
from cds_service.hooks.services import CdsService
from cds_service.hooks.tenant import Tenant
from cds_service.knowledge.loader import OVERRIDE_SYSTEM, Knowledge
from cds_service.settings import Settings
from cds_service.store import FeedbackRefused, Store, StoreFault
from cds_service.web import openapi
from cds_service.web.auth.jwt import JwtVerifier
from cds_service.web.errors import ProblemResponse, internal_error, store_unavailable
from cds_service.web.json_body import OrjsonRoute

log = logging.getLogger("aimss_cds")


@dataclass
class Runtime:
    """What start-up built, kept on ``app.state``; it is also the pipeline's environment."""

    settings: Settings
    knowledge: Knowledge
    services: dict[str, CdsService]
    store: Store
    recorder: CardRecorder
    verifier: JwtVerifier | None
    audience_base: str
    fhir: FhirAccess
    clock: Callable[[], date]
    now: Callable[[], datetime]


# The HTTP status and OperationOutcome code of each outcome that is not cards.
_PROBLEMS: dict[Outcome, tuple[int, str]] = {
    "wrong_hook": (400, "invalid"),
    "invalid_context": (400, "invalid"),
    "malformed_data": (400, "invalid"),
    "data_missing": (412, "processing"),
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _tenant(request: Request) -> Tenant:
    """Set by ``auth.middleware.Authenticate`` before the body was read."""
    tenant: Tenant = request.state.tenant
    return tenant


def routes() -> APIRouter:
    router = APIRouter(route_class=OrjsonRoute)

    @router.get("/cds-services", response_model=Discovery, responses=openapi.DISCOVERY)
    async def discovery(request: Request) -> Response:
        services = _runtime(request).services.values()
        body = Discovery(services=[service.describe() for service in services])
        return JSONResponse(body.model_dump(mode="json", exclude_none=True))

    @router.post("/cds-services/{service_id}", response_model=HookResponse, responses=openapi.HOOK)
    async def call_service(
        service_id: str, hook_request: HookRequest, request: Request
    ) -> Response:
        runtime = _runtime(request)
        started = time.perf_counter()
        logs.bind_hook_instance(hook_request.hookInstance)
        service = runtime.services.get(service_id)
        if service is None:
            return ProblemResponse(404, f"No CDS service with id {service_id!r}", "not-found")
        try:
            result = await run_hook(service, hook_request, runtime, _tenant(request))
        except StepFailed:
            _log_call(service, 500, started, HookResult("cards"))
            return internal_error()
        if result.outcome != "cards":
            status, code = _PROBLEMS[result.outcome]
            _log_call(service, status, started, result)
            return ProblemResponse(status, result.problem, code)
        _log_call(service, 200, started, result)
        return Response(
            HookResponse(cards=result.cards).to_json_bytes(), media_type="application/json"
        )

    @router.post("/cds-services/{service_id}/feedback", responses=openapi.FEEDBACK)
    async def feedback(service_id: str, body: FeedbackRequest, request: Request) -> Response:
        """Stored before the 200 (a store fault is a 503: nothing was acknowledged)."""
        runtime = _runtime(request)
        if service_id not in runtime.services:
            return ProblemResponse(404, f"No CDS service with id {service_id!r}", "not-found")
        await runtime.recorder.flush()  # so an override here finds its card at once
        tenant = _tenant(request)
        try:
            stored = await run_in_threadpool(
                functools.partial(
                    runtime.store.feedback.add,
                    service_id, body.feedback, runtime.clock(), runtime.now(), tenant=tenant.id,
                )
            )
        except FeedbackRefused as refused:  # the request models should have caught it first
            log.error("feedback service=%s %s", service_id, refused)
            return ProblemResponse(400, f"{refused}; the other items were stored")
        metrics.count_feedback(
            service_id, body.feedback, OVERRIDE_SYSTEM, dict(runtime.knowledge.override_reasons)
        )
        log.info("feedback service=%s items=%d new=%d", service_id, len(body.feedback), stored)
        return Response(status_code=200)

    @router.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"description": "Prometheus text exposition"}},
    )
    async def prometheus_metrics() -> Response:
        """No JWT (scrapers carry none) and no patient data; keep it off public networks."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @router.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: 200 while the process serves."""
        return {"status": "ok"}

    @router.get("/ready", responses=openapi.READY)
    async def ready(request: Request) -> Response:
        """Readiness: 503 while the shared store is unreachable."""
        try:
            await run_in_threadpool(_runtime(request).store.ping)
        except StoreFault as fault:
            log.error("not ready: %s", fault)
            return store_unavailable()
        return JSONResponse({"status": "ready", "knowledge": "loaded", "store": "reachable"})

    return router


def _log_call(service: CdsService, status: int, started: float, result: HookResult) -> None:
    """INFO, but WARNING for a 412 (the EHR's clinician got no cards: data could not be had)."""

    def topics(cards: list[Card]) -> str:
        return ",".join(card.source.topic.code for card in cards if card.source.topic) or "-"

    log.log(
        logging.WARNING if status == 412 else logging.INFO,
        "hook service=%s status=%d ms=%.1f cards=%s silent=%s unavailable=%s",
        service.id,
        status,
        (time.perf_counter() - started) * 1000,
        topics(result.cards),
        topics(result.silent),
        ",".join(f"{k}:{v}" for k, v in sorted(result.unavailable.items())) or "-",
    )
