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
from cds_service.clinical.findings import Finding, Indicator, Order
from cds_service.clinical.rules.patient_view import (
    ANALGESICS,
    aimss_evidence,
    data_incomplete,
    describe,
)
from cds_service.knowledge.loader import Knowledge

OrderRule = Callable[[PatientFacts, Knowledge, tuple[DraftedOrder, ...]], Finding | None]
SAFER_ANTIDEPRESSANTS = "venlafaxine, desvenlafaxine, escitalopram or citalopram"


def evaluate_order_select(
    facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]
) -> list[Finding]:
    findings = [f for rule in ORDER_SELECT_RULES if (f := rule(facts, knowledge, drafts))]
    if facts.unavailable and drafts:
        findings.append(data_incomplete(facts))
    return findings


def _drafted(drafts: tuple[DraftedOrder, ...], group: str) -> DraftedOrder | None:
    return next((d for d in drafts if group in d.groups), None)


def _on(uses: tuple[MedicationUse, ...]) -> str:
    return "; ".join(f"on {u.name} ({u.source})" for u in uses)


def _remove(draft: DraftedOrder, label: str, *creates: str) -> Order:
    return Order(label, activities=creates, deletes=(draft.resource_id,), recommended=True)


def serm_with_ai(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    draft, ais = _drafted(drafts, "serms"), facts.current_aromatase_inhibitors
    if draft is None or not ais:
        return None
    return Finding(
        topic="serm-with-ai", indicator="critical",
        summary=f"Do not combine {draft.name} with an aromatase inhibitor",
        evidence=(f"Drafted: {draft.name} ({draft.resource_id}).", f"Patient is {_on(ais)}."),
        advice=("A SERM opposes the AI's mechanism and adds no benefit (ATAC: the combination was "
                "inferior to the AI alone). For bone protection use a bisphosphonate or denosumab."),
        orders=(_remove(draft, "Remove the SERM and order a bisphosphonate", "bisphosphonate"),),
        unverified_codes=draft.unverified_codes,
    )


def estrogen_with_ai(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    draft, ais = _drafted(drafts, "systemic-estrogens"), facts.current_aromatase_inhibitors
    if draft is None or not ais:
        return None
    return Finding(
        topic="estrogen-with-ai", indicator="critical",
        summary=f"Systemic estrogen ({draft.name}) counteracts the aromatase inhibitor",
        evidence=(f"Drafted: {draft.name} ({draft.resource_id}).", f"Patient is {_on(ais)}."),
        advice=("Systemic estrogen defeats aromatase inhibition and is generally contraindicated after "
                "hormone-receptor-positive breast cancer. Discuss non-hormonal options."),
        orders=(_remove(draft, "Remove the estrogen order"),),
        unverified_codes=draft.unverified_codes,
    )


def tamoxifen_cyp2d6(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    inhibitors = facts.current("cyp2d6-inhibitors-strong") + facts.current("cyp2d6-inhibitors-moderate")
    draft = _drafted(drafts, "tamoxifen")
    if draft is not None and inhibitors:
        pair = f"Drafted: {draft.name} ({draft.resource_id}). Patient is {_on(inhibitors)}."
    else:
        draft = _drafted(drafts, "cyp2d6-inhibitors-strong") or _drafted(drafts, "cyp2d6-inhibitors-moderate")
        tamoxifen = facts.current("tamoxifen")
        if draft is None or not tamoxifen:
            return None
        pair = f"Drafted: {draft.name} ({draft.resource_id}), a CYP2D6 inhibitor. Patient is {_on(tamoxifen)}."
    return Finding(
        topic="tamoxifen-cyp2d6", indicator="warning",
        summary="CYP2D6 inhibitor with tamoxifen may reduce tamoxifen's effect",
        evidence=(pair,),
        advice=("Strong and moderate CYP2D6 inhibitors (paroxetine, fluoxetine, bupropion, duloxetine) "
                "cut the conversion of tamoxifen to endoxifen. If an antidepressant is needed, prefer "
                f"{SAFER_ANTIDEPRESSANTS}."),
        unverified_codes=draft.unverified_codes,
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
    return Finding(
        topic="serotonergic-interaction", indicator=indicator,
        summary=("Contraindicated: duloxetine with an MAOI or linezolid" if critical
                 else "Serotonin-syndrome risk: duloxetine with another serotonergic drug"),
        evidence=(f"Drafted: {draft.name} ({draft.resource_id}).", f"Patient is {_on(uses)}."),
        advice=("Duloxetine must not be given with an MAOI (or within 14 days of one, 5 days after "
                "duloxetine) or linezolid. With tramadol, SSRIs or SNRIs watch for serotonin syndrome."),
        orders=(_remove(draft, "Remove the drafted order"),) if critical else (),
        unverified_codes=draft.unverified_codes,
    )


def analgesic_expectations(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    draft = next((d for g in ANALGESICS if (d := _drafted(drafts, g))), None)
    shown = aimss_evidence(facts, knowledge)
    if draft is None or not facts.current_aromatase_inhibitors or not shown:
        return None
    bpi = facts.latest_bpi_interference
    severe = bpi is not None and bpi.value >= knowledge.rules.multimodal_management.min_bpi_interference
    return Finding(
        topic="analgesic-expectations", indicator="info",
        summary=f"{draft.name}: expect limited relief of AI joint pain; add exercise",
        evidence=(f"Drafted: {draft.name} ({draft.resource_id}).", f"Patient is {_on(facts.current_aromatase_inhibitors)}.", *describe(shown)),
        advice=("NSAIDs and acetaminophen often disappoint in AIMSS. Add exercise and consider acupuncture"
                + ("; with BPI interference this high, start several treatments together." if severe else ".")),
        orders=(Order("Refer to a supervised exercise program", ("exercise-program",), recommended=True),
                Order("Refer for acupuncture", ("acupuncture-referral",))),
        unverified_codes=draft.unverified_codes,
    )


def ai_start_bone_health(facts: PatientFacts, knowledge: Knowledge, drafts: tuple[DraftedOrder, ...]) -> Finding | None:
    draft = _drafted(drafts, AROMATASE_INHIBITORS)
    if draft is None or not facts.knows(DataSource.BONE_DENSITY):
        return None
    interval = knowledge.rules.ai_start_bone_health.dxa_interval_months
    last = facts.last_bone_density_test
    if last is not None and last.when >= months_before(facts.today, interval):
        return None
    seen = f"Last DXA {last.when.isoformat()} ({last.source})." if last else "No DXA on record."
    return Finding(
        topic="ai-start-bone-health", indicator="info",
        summary="Starting an aromatase inhibitor: baseline DXA, calcium and vitamin D",
        evidence=(f"Drafted: {draft.name} ({draft.resource_id}).", seen, f"Rule: no DXA in {interval} months."),
        advice=("AIs accelerate bone loss: get a baseline DXA and start calcium and vitamin D. Warn "
                "the patient that joint pain and stiffness often start 6-8 weeks in, and to report it."),
        orders=(Order("Order baseline DXA", ("dxa-scan",), recommended=True),
                Order("Prescribe calcium and vitamin D", ("calcium-supplement", "vitamin-d-supplement"))),
        unverified_codes=draft.unverified_codes,
    )


ORDER_SELECT_RULES: tuple[OrderRule, ...] = (
    serm_with_ai, estrogen_with_ai, tamoxifen_cyp2d6, serotonergic_interaction,
    analgesic_expectations, ai_start_bone_health,
)
