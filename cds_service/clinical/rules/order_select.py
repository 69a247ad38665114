"""order-select recommendations: the drafted drug checked against the chart (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Callable

from cds_service.clinical.dates import months_before
from cds_service.clinical.facts.model import (
    AROMATASE_INHIBITORS,
    DataSource,
    DraftedOrder,
    MedicationUse,
    PatientFacts,
)
from cds_service.clinical.findings import Datum, Finding, Indicator, Order
from cds_service.clinical.rules.names import names
from cds_service.clinical.rules.patient_view import (
    ANALGESICS,
    aimss_evidence,
    data_incomplete,
    data_of,
    interference,
)
from cds_service.knowledge.loader import Knowledge

OrderRule = Callable[[PatientFacts, Knowledge, tuple[DraftedOrder, ...]], Finding | None]


def evaluate_order_select(
    facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]
) -> list[Finding]:
    findings = [f for rule in ORDER_SELECT_RULES if (f := rule(facts, knowledge, drafts))]
    if facts.unavailable and drafts:
        findings.append(data_incomplete(facts))
    return findings


def _drafted(drafts: tuple[DraftedOrder, ...], group: str) -> DraftedOrder | None:
    return next((d for d in drafts if group in d.groups), None)


def _pair(draft: DraftedOrder, chart: tuple[MedicationUse, ...]) -> dict[str, str | tuple[str, ...]]:
    return {"draft": draft.name, "chart_drugs": names(chart)}


def _evidence(draft: DraftedOrder, chart: tuple[MedicationUse, ...]) -> tuple[Datum, ...]:
    return (Datum("drafted", draft.name), *data_of(chart))


def serm_with_ai(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    draft, ais = _drafted(drafts, "serms"), facts.current_aromatase_inhibitors
    if draft is None or not ais:
        return None
    return Finding(
        topic="serm-with-ai", indicator="critical",
        evidence=_evidence(draft, ais), params=_pair(draft, ais),
        orders=(Order(("bisphosphonate",), deletes=(draft.resource_id,), recommended=True),),
    )


def estrogen_with_ai(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    draft, ais = _drafted(drafts, "systemic-estrogens"), facts.current_aromatase_inhibitors
    if draft is None or not ais:
        return None
    return Finding(
        topic="estrogen-with-ai", indicator="critical",
        evidence=_evidence(draft, ais), params=_pair(draft, ais),
        orders=(Order(deletes=(draft.resource_id,), recommended=True),),
    )


def tamoxifen_cyp2d6(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    inhibitors = facts.current("cyp2d6-inhibitors-strong") + facts.current("cyp2d6-inhibitors-moderate")
    draft = _drafted(drafts, "tamoxifen")
    chart = inhibitors
    if draft is None or not inhibitors:
        draft = _drafted(drafts, "cyp2d6-inhibitors-strong") or _drafted(drafts, "cyp2d6-inhibitors-moderate")
        chart = facts.current("tamoxifen")
        if draft is None or not chart:
            return None
    return Finding(
        topic="tamoxifen-cyp2d6", indicator="warning",
        evidence=_evidence(draft, chart), params=_pair(draft, chart),
    )


def serotonergic_interaction(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    pairs: list[tuple[Indicator, DraftedOrder, tuple[MedicationUse, ...]]] = []
    if (draft := _drafted(drafts, "duloxetine")) is not None:
        pairs += [("critical", draft, facts.current("maois-linezolid")), ("warning", draft, facts.current("serotonergic-drugs"))]
    on_duloxetine = facts.current("duloxetine")
    if (draft := _drafted(drafts, "maois-linezolid")) is not None:
        pairs.append(("critical", draft, on_duloxetine))
    if (draft := _drafted(drafts, "serotonergic-drugs")) is not None:
        pairs.append(("warning", draft, on_duloxetine))
    hits = [(indicator, draft, uses) for indicator, draft, uses in pairs if uses]
    if not hits:
        return None
    indicator, draft, uses = min(hits, key=lambda hit: 0 if hit[0] == "critical" else 1)
    critical = indicator == "critical"
    params = _pair(draft, uses) | ({"contraindicated": names(uses)} if critical else {})
    return Finding(
        topic="serotonergic-interaction", indicator=indicator,
        evidence=_evidence(draft, uses), params=params,
        orders=(Order(deletes=(draft.resource_id,), recommended=True),) if critical else (),
    )


def analgesic_expectations(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    draft = next((d for g in ANALGESICS if (d := _drafted(drafts, g))), None)
    shown = aimss_evidence(facts, knowledge)
    ais = facts.current_aromatase_inhibitors
    if draft is None or not ais or not shown:
        return None
    params = _pair(draft, ais)
    bpi = facts.latest_bpi_interference
    if bpi is not None and bpi.value >= knowledge.rules.multimodal_management.min_bpi_interference:
        params |= {"bpi": interference(bpi), "bpi_date": bpi.when.isoformat()}
    return Finding(
        topic="analgesic-expectations", indicator="info",
        evidence=(*_evidence(draft, ais), *data_of(shown)), params=params,
        orders=(Order(("exercise-program",), recommended=True), Order(("acupuncture-referral",))),
    )


def ai_start_bone_health(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    draft = _drafted(drafts, AROMATASE_INHIBITORS)
    if draft is None or not facts.knows(DataSource.BONE_DENSITY):
        return None
    interval = knowledge.rules.ai_start_bone_health.dxa_interval_months
    last = facts.last_bone_density_test
    if last is not None and last.when >= months_before(facts.today, interval):
        return None
    params = {"draft": draft.name} | ({"dxa_date": last.when.isoformat()} if last else {})
    return Finding(
        topic="ai-start-bone-health", indicator="info",
        evidence=(Datum("drafted", draft.name), *data_of([last] if last else [])), params=params,
        orders=(Order(("dxa-scan",), recommended=True),
                Order(("calcium-supplement", "vitamin-d-supplement"))),
    )


ORDER_SELECT_RULES: tuple[OrderRule, ...] = (
    serm_with_ai, estrogen_with_ai, tamoxifen_cyp2d6, serotonergic_interaction,
    analgesic_expectations, ai_start_bone_health,
)
