"""Order-time recommendations: each drafted drug checked against the chart (DESIGN §4).

order-select runs every rule on the drafts the clinician selected; order-sign runs only the
safety rules, on every draft being signed. A safety rule gives one finding per draft it
concerns (one card per topic and draft), naming the drafted drug, never its resource id.
Suggestions are each complete alone, because clients may apply only one action of a
suggestion: "Remove the draft" deletes it; "Order <alternative> instead" creates another.
The words are in card-text.toml; rules give the values (``params``) and the notes that apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cds_service.clinical.dates import months_before
from cds_service.clinical.facts.model import (
    AROMATASE_INHIBITORS,
    DataSource,
    DraftedOrder,
    MedicationUse,
    PatientFacts,
)
from cds_service.clinical.findings import Datum, Finding, Order
from cds_service.clinical.rules.duloxetine_safety import duloxetine_safety
from cds_service.clinical.rules.names import names
from cds_service.clinical.rules.patient_view import (
    ANALGESICS,
    aimss_evidence,
    data_incomplete,
    data_of,
    interference,
)
from cds_service.knowledge.loader import Knowledge
from cds_service.knowledge.wording import ParamValue

Drafts = tuple[DraftedOrder, ...]
OrderRule = Callable[[PatientFacts, Knowledge, Drafts], Iterator[Finding]]

CONTRAINDICATED_WITH_DULOXETINE = "maois-linezolid"
BONE_MODIFYING_AGENTS = "bone-modifying-agents"
ROUTE_UNKNOWN_ESTROGENS = "estrogens-route-unknown"


def evaluate_order_select(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> list[Finding]:
    findings = [f for rule in ORDER_SELECT_RULES for f in rule(facts, knowledge, drafts)]
    if facts.unavailable and drafts:
        findings.append(data_incomplete(facts))
    return findings


def evaluate_order_sign(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> list[Finding]:
    """The safety checks only: warnings and critical cards. Advice (analgesics, bone health at
    AI start, vaginal estrogen) was given when the drug was chosen."""
    return [
        f for rule in SAFETY_RULES for f in rule(facts, knowledge, drafts)
        if f.indicator in ("warning", "critical")
    ]


def _drafted(drafts: Drafts, *groups: str) -> Iterator[DraftedOrder]:
    return (d for d in drafts if d.groups.intersection(groups))


def _pair(draft: DraftedOrder, chart: tuple[MedicationUse, ...]) -> dict[str, ParamValue]:
    return {"draft": draft.name, "chart_drugs": names(chart)}


def _evidence(draft: DraftedOrder, chart: tuple[MedicationUse, ...]) -> tuple[Datum, ...]:
    return (Datum("drafted", draft.name), *data_of(chart))


def _remove(draft: DraftedOrder) -> Order:
    return Order(deletes=(draft.resource_id,), recommended=True)


def serm_with_ai(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    """A SERM (bazedoxifene with conjugated estrogens included: one card, not also an estrogen
    card). Alternatives: remove the draft, or order a bisphosphonate instead (not to a patient
    already on a bone-modifying agent)."""
    ais = facts.current_aromatase_inhibitors
    if not ais:
        return
    on_bone_agent = facts.current(BONE_MODIFYING_AGENTS)
    for draft in _drafted(drafts, "serms"):
        params = _pair(draft, ais) | ({"bone_agent": names(on_bone_agent)} if on_bone_agent else {})
        yield Finding(
            topic="serm-with-ai", indicator="critical",
            evidence=_evidence(draft, ais), params=params,
            notes=() if on_bone_agent else ("agent",),
            orders=(_remove(draft), *(() if on_bone_agent else (Order(("bisphosphonate",)),))),
            draft=draft.identity, choose_one=True,
        )


def estrogen_with_ai(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    """Systemic estrogen is critical; low-dose vaginal estrogen is advice; an estrogen whose code
    does not tell the route (an ingredient, or a brand sold both ways) is a warning that says so."""
    ais = facts.current_aromatase_inhibitors
    if not ais:
        return
    for draft in _drafted(drafts, "systemic-estrogens", "vaginal-estrogens", ROUTE_UNKNOWN_ESTROGENS):
        if "serms" in draft.groups:
            continue
        params = _pair(draft, ais)
        if ROUTE_UNKNOWN_ESTROGENS in draft.groups and "vaginal-estrogens" not in draft.groups:
            yield Finding(
                topic="estrogen-with-ai", indicator="warning", evidence=_evidence(draft, ais),
                params=params | {"route_unknown_estrogen": draft.name},
                orders=(_remove(draft),), draft=draft.identity,
            )
        elif "systemic-estrogens" in draft.groups:
            yield Finding(
                topic="estrogen-with-ai", indicator="critical", evidence=_evidence(draft, ais),
                params=params | {"systemic_estrogen": draft.name},
                orders=(_remove(draft),), draft=draft.identity,
            )
        else:
            yield Finding(
                topic="estrogen-with-ai", indicator="info", evidence=_evidence(draft, ais),
                params=params | {"vaginal_estrogen": draft.name}, draft=draft.identity,
            )


def tamoxifen_cyp2d6(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    inhibitors = facts.current("cyp2d6-inhibitors-strong") + facts.current("cyp2d6-inhibitors-moderate")
    tamoxifen = facts.current("tamoxifen")
    for draft in drafts:
        if "tamoxifen" in draft.groups and inhibitors:
            chart = inhibitors
        elif draft.groups & {"cyp2d6-inhibitors-strong", "cyp2d6-inhibitors-moderate"} and tamoxifen:
            chart = tamoxifen
        else:
            continue
        yield Finding(
            topic="tamoxifen-cyp2d6", indicator="warning",
            evidence=_evidence(draft, chart), params=_pair(draft, chart), draft=draft.identity,
        )


def serotonergic_interaction(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    """Duloxetine drafted: the check every duloxetine card keeps (``duloxetine_safety``: an MAOI
    or linezolid current or within the washout is critical; other serotonergic drugs and the
    label's cautions are named). The reverse: an MAOI or linezolid drafted while duloxetine is
    current or stopped within its own washout is critical; another serotonergic drug a warning."""
    rules = knowledge.rules.serotonergic_interaction
    for draft in drafts:
        params: dict[str, ParamValue] = {"draft": draft.name}
        if "duloxetine" in draft.groups:
            safety = duloxetine_safety(facts, knowledge)
            blocking, others = safety.contraindicated_by, safety.serotonergic
            params |= safety.params()
        elif CONTRAINDICATED_WITH_DULOXETINE in draft.groups:
            blocking = facts.current("duloxetine") + facts.stopped_within("duloxetine", rules.duloxetine_washout_days)
            others = ()
            if blocking:
                params |= {"duloxetine_stopped": names(blocking),
                           "duloxetine_washout_days": rules.duloxetine_washout_days}
        elif "serotonergic-drugs" in draft.groups:
            blocking, others = (), facts.current("duloxetine")
            if others:
                params |= {"serotonergic": names(others)}
        else:
            continue
        if not blocking and not others:
            continue
        critical = bool(blocking)
        yield Finding(
            topic="serotonergic-interaction", indicator="critical" if critical else "warning",
            evidence=_evidence(draft, (*blocking, *others)), params=params,
            orders=(_remove(draft),) if critical else (), draft=draft.identity,
        )


def ai_with_tamoxifen(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    ais, tamoxifen = facts.current_aromatase_inhibitors, facts.current("tamoxifen")
    for draft in drafts:
        if "tamoxifen" in draft.groups and ais:
            chart = ais
        elif AROMATASE_INHIBITORS in draft.groups and tamoxifen:
            chart = tamoxifen
        else:
            continue
        yield Finding(
            topic="ai-with-tamoxifen", indicator="warning",
            evidence=_evidence(draft, chart), params=_pair(draft, chart),
            orders=(_remove(draft),), draft=draft.identity,
        )


def analgesic_expectations(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    draft = next(_drafted(drafts, *ANALGESICS), None)
    shown = aimss_evidence(facts, knowledge)
    ais = facts.current_aromatase_inhibitors
    if draft is None or not ais or not shown:
        return
    params = _pair(draft, ais)
    bpi = facts.latest_bpi_interference
    if bpi is not None and bpi.value >= knowledge.rules.multimodal_management.min_bpi_interference:
        params |= {"bpi": interference(bpi), "bpi_date": bpi.when.isoformat()}
    yield Finding(
        topic="analgesic-expectations", indicator="info",
        evidence=(*_evidence(draft, ais), *data_of(shown)), params=params,
        orders=(Order(("exercise-program",), recommended=True), Order(("acupuncture-referral",))),
    )


def ai_start_bone_health(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    draft = next(_drafted(drafts, AROMATASE_INHIBITORS), None)
    if draft is None or not facts.knows(DataSource.BONE_DENSITY):
        return
    interval = knowledge.rules.ai_start_bone_health.dxa_interval_months
    last = facts.last_bone_density_test
    if last is not None and last.when >= months_before(facts.today, interval):
        return
    params: dict[str, ParamValue] = {"draft": draft.name}
    if last:
        params["dxa_date"] = last.when.isoformat()
    yield Finding(
        topic="ai-start-bone-health", indicator="info",
        evidence=(Datum("drafted", draft.name), *data_of([last] if last else [])), params=params,
        orders=(Order(("dxa-scan",), recommended=True),
                Order(("calcium-supplement", "vitamin-d-supplement"))),
    )


SAFETY_RULES: tuple[OrderRule, ...] = (
    serm_with_ai, estrogen_with_ai, tamoxifen_cyp2d6, serotonergic_interaction, ai_with_tamoxifen,
)
ORDER_SELECT_RULES: tuple[OrderRule, ...] = (*SAFETY_RULES, analgesic_expectations, ai_start_bone_health)

SAFETY_DRAFT_GROUPS = frozenset({
    "serms", "systemic-estrogens", ROUTE_UNKNOWN_ESTROGENS, "tamoxifen", "cyp2d6-inhibitors-strong",
    "cyp2d6-inhibitors-moderate", "duloxetine", CONTRAINDICATED_WITH_DULOXETINE, "serotonergic-drugs",
    AROMATASE_INHIBITORS,
})
"""The drug groups a safety rule reads in a draft: a draft in none of them needs no chart read at
signing. (Vaginal estrogen is advice only, given at order-select.)"""
