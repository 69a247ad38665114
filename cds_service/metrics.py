"""Prometheus metrics of the service, and the ``/metrics`` exposition.

Every label takes its value from a fixed, small set (service ids, prefetch keys, stage names,
card topics, override codes, failure reasons), so series stay bounded and no patient id, URL,
token or free text can reach a scrape. Under ``aimss-cds serve --workers N`` each worker writes
to ``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any worker sums them all.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Collection, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.hooks.protocol import Card, FeedbackItem

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Hooks answer in 1-25 ms from prefetch; FHIR fallback waits up to the deadline (1.5 s default).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0)

HOOK_SECONDS = Histogram(
    "aimss_hook_duration_seconds",
    "Time to answer a hook call, by service and HTTP status.",
    ["service", "status"],
    buckets=_BUCKETS,
)
STAGE_SECONDS = Histogram(
    "aimss_stage_duration_seconds",
    "Time spent in each stage of a hook call (gather, facts, rules, snooze, cards).",
    ["service", "stage"],
    buckets=_BUCKETS,
)
PREFETCH_KEYS = Counter(
    "aimss_prefetch_keys",
    "Prefetch keys by where their data came from: prefetch, fhir (fallback) or unavailable.",
    ["key", "source", "reason"],
)
CARDS = Counter("aimss_cards", "Cards issued, by service and topic.", ["service", "topic"])
FEEDBACK_ITEMS = Counter(
    "aimss_feedback_items",
    "Feedback items received, by outcome and override reason code.",
    ["service", "outcome", "reason"],
)
AUTH_FAILURES = Counter("aimss_auth_failures", "Rejected JWTs, by reason.", ["reason"])
INTERNAL_ERRORS = Counter(
    "aimss_internal_errors",
    "Bugs: unexpected exceptions in a step of the hook pipeline, by step.",
    ["stage"],
)

# The reasons gather and the FHIR client give for an unavailable key; anything else is "other".
_KEY_REASONS = frozenset({
    "unresolved_token", "prefetch_operation_outcome", "malformed_content", "no_fhir_server",
    "no_fhir_authorization", "fhir_server_not_https", "deadline", "error", "paging_loop",
    "page_limit", "foreign_next_link", "operation_outcome", "malformed", "unauthorized",
    "too_large", "timeout", "unreachable",
})
_HTTP_REASON = re.compile(r"^http_([1-9])\d\d$")


def key_reason(reason: str) -> str:
    """A bounded label for an unavailable key: a known reason, ``http_4xx``/``http_5xx``, or other."""
    if reason in _KEY_REASONS:
        return reason
    if match := _HTTP_REASON.match(reason):
        return f"http_{match.group(1)}xx"
    return "other"


def count_keys(keys: Iterable[str], fetched: Collection[str], unavailable: dict[str, str]) -> None:
    """Count each prefetch key of one call once, by where its data came from."""
    for key in keys:
        if key in unavailable:
            PREFETCH_KEYS.labels(key, "unavailable", key_reason(unavailable[key])).inc()
        else:
            PREFETCH_KEYS.labels(key, "fhir" if key in fetched else "prefetch", "").inc()


def count_cards(service: str, cards: Iterable[Card]) -> None:
    for card in cards:
        if card.source.topic is not None:
            CARDS.labels(service, card.source.topic.code).inc()


def count_feedback(
    service: str, items: Iterable[FeedbackItem], reason_system: str, reason_codes: Collection[str]
) -> None:
    """Override reasons are counted by code only when the code is one of ours, else "other"."""
    for item in items:
        reason = item.overrideReason.reason if item.overrideReason else None
        if reason is None:
            label = "none"
        elif reason.system == reason_system and reason.code in reason_codes:
            label = reason.code
        else:
            label = "other"
        FEEDBACK_ITEMS.labels(service, item.outcome, label).inc()


def exposition() -> tuple[bytes, str]:
    """The text exposition: this process's registry, or every worker's in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class HookTimer:
    """ASGI middleware timing every hook call, whatever answers it (401, 400, 412, 200...).

    Only POSTs to a known service id are timed, so the ``service`` label stays bounded.
    """

    def __init__(self, app: ASGIApp, services: Collection[str]) -> None:
        self.app = app
        self.paths = {f"/cds-services/{service}": service for service in services}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if service is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            HOOK_SECONDS.labels(service, str(status)).observe(time.perf_counter() - started)
