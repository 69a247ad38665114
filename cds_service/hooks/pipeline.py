"""One hook call as named steps, from the parsed request to the cards. Nothing here knows HTTP.

validate context -> needs data -> gather -> read facts -> evaluate rules -> (order-sign: drop
what was overridden at order-select) -> drop quieted -> render cards -> record -> show (or not).
Each step returns what it produces; none edits another's result. The route turns the
``HookResult`` into a response.

The caller's tenant (``hooks.tenant``) keys everything stored, decides whether its
``fhirServer`` may be contacted (a server not in its list never is: the keys that needed it are
unavailable, logged), and whether this clinician sees the cards: a silent call computes and
records them exactly as an active one and answers with none.

Reading the facts and evaluating the rules are CPU work proportional to the chart. A chart of
more than ``OFF_LOOP_RESOURCES`` is read and evaluated in a worker thread, so it cannot stall
the event loop (and ``/health``) of the worker; a smaller one, a millisecond or so of work, on
the event loop, since two thread hops (each waiting for the GIL behind other calls) would cost
it more than the work itself.

Only the facts step tolerates malformed client data (``intake``). Any other exception in a step
is a bug: its type and stack frames are logged (not its message, which may quote patient data),
it is counted in ``aimss_internal_errors_total{stage}``, and ``StepFailed`` is raised.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol, TypeVar

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from cds_service import metrics
from cds_service.clinical.cards import render_findings
from cds_service.fhir.gather import FhirAccess, gather
from cds_service.hooks.alert_fatigue import (
    no_card,
    without_overridden_at_selection,
    without_quieted,
)
from cds_service.hooks.card_recorder import CardRecorder
from cds_service.hooks.intake import MalformedData, read_facts
from cds_service.hooks.protocol import Card, HookRequest, describe_validation_errors
from cds_service.hooks.services import CdsService
from cds_service.hooks.tenant import Tenant
from cds_service.knowledge.loader import Knowledge
from cds_service.store import Store

log = logging.getLogger("aimss_cds")
T = TypeVar("T")

Clock = Callable[[], date]

OFF_LOOP_RESOURCES = 500
"""Above this many resources, facts and rules run in a thread. At ~10 µs a resource, a chart at
the limit holds the event loop about 5 ms; a 10,000-resource chart would hold it ~150 ms."""

Outcome = Literal["cards", "wrong_hook", "invalid_context", "malformed_data", "data_missing"]
"""``cards`` answers with cards (maybe none); the others say why the call could not be answered."""


class HookEnvironment(Protocol):
    """What a hook call runs against: the knowledge, the shared state, the FHIR access, the clock."""

    @property
    def knowledge(self) -> Knowledge: ...
    @property
    def store(self) -> Store: ...
    @property
    def recorder(self) -> CardRecorder: ...
    @property
    def fhir(self) -> FhirAccess: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def now(self) -> Callable[[], datetime]: ...


@dataclass(frozen=True)
class HookResult:
    outcome: Outcome
    cards: list[Card] = field(default_factory=list)
    """The cards answered: none on a silent call."""
    problem: str = ""
    unavailable: dict[str, str] = field(default_factory=dict)
    silent: list[Card] = field(default_factory=list)
    """Cards computed and recorded, not answered: the tenant's rollout mode kept them back."""


class StepFailed(Exception):
    """A bug in a step of the pipeline (already logged and counted)."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


async def run_hook(
    service: CdsService, request: HookRequest, env: HookEnvironment, tenant: Tenant
) -> HookResult:
    """The cards for one call of ``service`` by ``tenant``, or why there are none."""
    if request.hook != service.hook:
        return HookResult(
            "wrong_hook",
            problem=f"Service {service.id!r} answers the {service.hook!r} hook, not {request.hook!r}",
        )
    try:
        context = service.context_model.model_validate(request.context)
    except ValidationError as error:
        return HookResult("invalid_context", problem="Invalid context: " + describe_validation_errors(
            [{**e, "loc": ("context", *e["loc"])} for e in error.errors()]
        ))
    if not service.needs_data(context, env.knowledge):
        return HookResult("cards")

    may_contact = request.fhirServer is None or tenant.may_contact(request.fhirServer)
    if not may_contact:
        log.warning("fhirServer not in the fhir_servers of issuer %s: not contacted", tenant.id)
    with _step(service, "gather"):
        gathered = await gather(request, service.prefetch, env.fhir, may_contact=may_contact)
    today = env.clock()
    off_loop = sum(map(len, gathered.resources.values())) > OFF_LOOP_RESOURCES
    with _step(service, "facts"):
        try:
            intake = await _compute(off_loop, read_facts, gathered, service, env.knowledge, today)
        except MalformedData as error:
            # Keys failed together: the data's fault, answered as such rather than as a bug.
            log.warning("malformed FHIR data: %s", error.error_type)
            return HookResult(
                "malformed_data",
                problem="The prefetch or FHIR server data is not valid FHIR R4 JSON "
                "(an element has the wrong type)",
                unavailable=error.unavailable,
            )
    metrics.count_keys(service.prefetch, gathered.fetched, intake.unavailable)
    if service.sources_of(intake.unavailable) & service.required_sources:
        # The keys, not why each failed: a reason per key ("unreachable", "timeout") would make
        # the service a port scanner of the networks it reaches. The reasons go to the log.
        keys = ", ".join(sorted(intake.unavailable))
        return HookResult(
            "data_missing",
            problem="Data the service needs could be had neither from prefetch nor from the "
            f"FHIR server: {keys}",
            unavailable=intake.unavailable,
        )
    with _step(service, "rules"):
        findings = await _compute(off_loop, service.evaluate, intake.facts, env.knowledge, context)
    patient_key = env.store.patients.key(request.fhirServer, context.patientId, tenant=tenant.id)
    now = env.now()
    if service.hook == "order-sign":
        with _step(service, "no-repeat"):
            findings = await without_overridden_at_selection(
                findings, env.store.cards, patient_key, now, env.knowledge.rules.order_sign, tenant.id
            )
    grouped = service.grouped(env.knowledge)
    with _step(service, "snooze"):
        shown = await without_quieted(
            findings, env.store.cards, patient_key, today, env.knowledge.rules.snooze, tenant.id,
            env.knowledge.wording.card_topic if grouped else no_card,
        )
    with _step(service, "cards"):
        rendered = render_findings(shown, env.knowledge, context.patientId, today, grouped=grouped)
    cards = [card for _, card in rendered]
    silent = not tenant.shows_cards_to(context.userId)
    if not silent:
        metrics.count_cards(service.id, cards)
    # Recorded in the next batch: feedback on these cards can then quiet their topic, and an
    # override at order-select can keep its draft's card from repeating at signing.
    with _step(service, "record", timed=False):
        env.recorder.add(service.id, cards, patient_key, today, tenant=tenant.id, silent=silent)
        drafted = [(card, finding.draft) for finding, card in rendered if finding and finding.draft]
        if drafted:
            env.recorder.add_drafts(service.hook, drafted, patient_key, now, tenant=tenant.id)
    if silent:
        return HookResult("cards", unavailable=intake.unavailable, silent=cards)
    return HookResult("cards", cards=cards, unavailable=intake.unavailable)


async def _compute(off_loop: bool, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in a worker thread when ``off_loop``, else here on the event loop."""
    return await run_in_threadpool(work, *args) if off_loop else work(*args)


@contextmanager
def _step(service: CdsService, stage: str, *, timed: bool = True) -> Iterator[None]:
    """Time a step; turn an exception escaping it into a logged, counted ``StepFailed``."""
    try:
        if timed:
            with metrics.STAGE_SECONDS.labels(service.id, stage).time():
                yield
        else:
            yield
    except Exception as error:
        metrics.INTERNAL_ERRORS.labels(stage).inc()
        frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
        log.error("bug in step %s of %s: %s\n%s", stage, service.id, type(error).__name__, frames)
        raise StepFailed(stage) from None
