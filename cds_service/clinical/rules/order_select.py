"""Order-time recommendations: each drafted drug checked against the chart (DESIGN §4).

order-select runs every rule on the drafts the clinician selected; order-sign runs only the
safety rules, on every draft being signed. A safety rule gives one finding per draft it
concerns (one card per topic and draft), naming the drafted drug, never its resource id.
Suggestions are each complete alone, because clients may apply only one action of a
suggestion: "Remove the draft" deletes it; "Order <alternative> instead" creates another.
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
from cds_service.clinical.findings import Finding, Order
from cds_service.clinical.rules.patient_view import (
    ANALGESICS,
    aimss_evidence,
    data_incomplete,
    describe,
)
from cds_service.knowledge.loader import Knowledge

Drafts = tuple[DraftedOrder, ...]
OrderRule = Callable[[PatientFacts, Knowledge, Drafts], Iterator[Finding]]

SAFER_ANTIDEPRESSANTS = "venlafaxine, desvenlafaxine, escitalopram or citalopram"
CONTRAINDICATED_WITH_DULOXETINE = "maois-linezolid"
MAOIS = "maois"
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


def _on(uses: tuple[MedicationUse, ...]) -> str:
    return "; ".join(_use(u) for u in uses)


def _use(use: MedicationUse) -> str:
    if not use.is_current and use.end is not None:
        return f"{use.name} (stopped {use.end.isoformat()})"
    return f"{use.name} (since {use.start.isoformat()})" if use.start else use.name


def _remove(draft: DraftedOrder) -> Order:
    return Order("Remove the draft", deletes=(draft.resource_id,), recommended=True)


def _instead(knowledge: Knowledge, activity: str) -> Order:
    product = knowledge.activities[activity].get("productCodeableConcept", {}).get("text", activity)
    return Order(f"Order {product} instead", activities=(activity,))


def serm_with_ai(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    ais = facts.current_aromatase_inhibitors
    if not ais:
        return
    on_bone_agent = facts.current(BONE_MODIFYING_AGENTS)
    for draft in _drafted(drafts, "serms"):
        alternative = () if on_bone_agent else (_instead(knowledge, "bisphosphonate"),)
        yield Finding(
            draft=draft.identity, unverified_codes=draft.unverified_codes,
            topic="serm-with-ai", indicator="critical",
            summary=f"Do not combine {draft.name} with an aromatase inhibitor",
            evidence=(f"Drafted: {draft.name}.", f"On {_on(ais)}."),
            advice=("A SERM opposes the AI and adds no benefit (ATAC: the AI with tamoxifen was no "
                    "better than tamoxifen alone). For bone, use a bisphosphonate or denosumab"
                    + (f"; already on {_on(on_bone_agent)}." if on_bone_agent else
                       ": check kidney function, calcium, vitamin D and dental status first.")),
            orders=(_remove(draft), *alternative), choose_one=True,
        )


def estrogen_with_ai(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    """Systemic estrogen is critical; low-dose vaginal estrogen is advice; an estrogen whose code
    does not tell the route (an ingredient, or a brand sold both ways) is a warning that says so.
    A SERM combined with estrogen (bazedoxifene with conjugated estrogens) is one card,
    ``serm-with-ai``."""
    ais = facts.current_aromatase_inhibitors
    if not ais:
        return
    for draft in _drafted(drafts, "systemic-estrogens", "vaginal-estrogens", ROUTE_UNKNOWN_ESTROGENS):
        if "serms" in draft.groups:
            continue
        if ROUTE_UNKNOWN_ESTROGENS in draft.groups and "vaginal-estrogens" not in draft.groups:
            yield Finding(
                draft=draft.identity, unverified_codes=draft.unverified_codes,
                topic="estrogen-with-ai", indicator="warning",
                summary=f"Estrogen ({draft.name}) on an aromatase inhibitor: systemic use counteracts it",
                evidence=(f"Drafted: {draft.name}; the order's code does not say whether it is "
                          "systemic or vaginal.", f"On {_on(ais)}."),
                advice=("Systemic estrogen defeats aromatase inhibition; the AI labels advise against "
                        "estrogen-containing therapies. If this is low-dose vaginal estrogen, agree it "
                        "with the patient's oncology team."),
                orders=(_remove(draft),),
            )
        elif "systemic-estrogens" in draft.groups:
            yield Finding(
                draft=draft.identity, unverified_codes=draft.unverified_codes,
                topic="estrogen-with-ai", indicator="critical",
                summary=f"Systemic estrogen ({draft.name}) counteracts the aromatase inhibitor",
                evidence=(f"Drafted: {draft.name}.", f"On {_on(ais)}."),
                advice=("Systemic estrogen defeats aromatase inhibition; the AI labels advise against "
                        "estrogen-containing therapies. Discuss non-hormonal options."),
                orders=(_remove(draft),),
            )
        else:
            yield Finding(
                draft=draft.identity, unverified_codes=draft.unverified_codes,
                topic="estrogen-with-ai", indicator="info",
                summary=f"Vaginal estrogen ({draft.name}) on an aromatase inhibitor: discuss with oncology",
                evidence=(f"Drafted: {draft.name}.", f"On {_on(ais)}."),
                advice=("Low-dose vaginal estrogen is not systemic estrogen, but some is absorbed. "
                        "Try non-hormonal moisturisers first and agree its use with the patient's "
                        "oncology team."),
            )


def tamoxifen_cyp2d6(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    inhibitors = facts.current("cyp2d6-inhibitors-strong") + facts.current("cyp2d6-inhibitors-moderate")
    tamoxifen = facts.current("tamoxifen")
    for draft in drafts:
        if "tamoxifen" in draft.groups and inhibitors:
            pair = (f"Drafted: {draft.name}.", f"On {_on(inhibitors)}, a CYP2D6 inhibitor.")
        elif draft.groups & {"cyp2d6-inhibitors-strong", "cyp2d6-inhibitors-moderate"} and tamoxifen:
            pair = (f"Drafted: {draft.name}, a CYP2D6 inhibitor.", f"On {_on(tamoxifen)}.")
        else:
            continue
        yield Finding(
            draft=draft.identity, unverified_codes=draft.unverified_codes,
            topic="tamoxifen-cyp2d6", indicator="warning",
            summary="CYP2D6 inhibitor with tamoxifen may reduce tamoxifen's effect",
            evidence=pair,
            advice=("Strong and moderate CYP2D6 inhibitors (paroxetine, fluoxetine, bupropion, duloxetine) "
                    "cut the conversion of tamoxifen to endoxifen. If an antidepressant is needed, prefer "
                    f"{SAFER_ANTIDEPRESSANTS}."),
        )


def serotonergic_interaction(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    """Duloxetine with an MAOI (current, or stopped within the washout), linezolid or IV methylene
    blue (current) is critical;
    with any other serotonergic drug a warning; the reverse likewise. The card names every
    serotonergic drug on the chart."""
    rules = knowledge.rules.serotonergic_interaction
    others = facts.current("serotonergic-drugs")
    for draft in drafts:
        if "duloxetine" in draft.groups:
            blocking = (facts.current(CONTRAINDICATED_WITH_DULOXETINE)
                        + facts.stopped_within(MAOIS, rules.maoi_washout_days))
            also = tuple(u for u in others if not u.belongs_to("duloxetine"))
        elif CONTRAINDICATED_WITH_DULOXETINE in draft.groups:
            blocking = facts.current("duloxetine") + facts.stopped_within("duloxetine", rules.duloxetine_washout_days)
            also = tuple(u for u in others if not u.belongs_to("duloxetine"))
        elif "serotonergic-drugs" in draft.groups and (on_duloxetine := facts.current("duloxetine")):
            blocking, also = (), on_duloxetine + tuple(u for u in others if not u.belongs_to("duloxetine"))
        else:
            continue
        if not blocking and not also:
            continue
        critical = bool(blocking)
        lines = [f"Drafted: {draft.name}."]
        if blocking:
            lines.append(f"Contraindicated with it: {_on(blocking)}.")
        if also:
            lines.append(f"Other serotonergic drugs on the chart: {_on(also)}.")
        yield Finding(
            draft=draft.identity, unverified_codes=draft.unverified_codes,
            topic="serotonergic-interaction", indicator="critical" if critical else "warning",
            summary=(f"Contraindicated: {draft.name} with an MAOI or linezolid" if critical
                     else f"Serotonin-syndrome risk: {draft.name} with other serotonergic drugs"),
            evidence=tuple(lines),
            advice=(f"Duloxetine must not be given with an MAOI, within {rules.maoi_washout_days} days of "
                    f"stopping one, or with linezolid; an MAOI not within {rules.duloxetine_washout_days} "
                    "days of stopping duloxetine. With other serotonergic drugs, watch for serotonin syndrome."),
            orders=(_remove(draft),) if critical else (),
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
            draft=draft.identity, unverified_codes=draft.unverified_codes,
            topic="ai-with-tamoxifen", indicator="warning",
            summary=f"{draft.name} with {chart[0].name}: not better than an AI alone",
            evidence=(f"Drafted: {draft.name}.", f"On {_on(chart)}."),
            advice=("Tamoxifen with an aromatase inhibitor is not better than the AI alone (ATAC), and "
                    "tamoxifen lowers AI levels. When switching, stop one as the other starts."),
            orders=(_remove(draft),),
        )


def analgesic_expectations(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    draft = next(_drafted(drafts, *ANALGESICS), None)
    shown = aimss_evidence(facts, knowledge)
    if draft is None or not facts.current_aromatase_inhibitors or not shown:
        return
    bpi = facts.latest_bpi_interference
    severe = bpi is not None and bpi.value >= knowledge.rules.multimodal_management.min_bpi_interference
    yield Finding(
        topic="analgesic-expectations", indicator="info",
        summary=f"{draft.name}: expect limited relief of AI joint pain; add exercise",
        evidence=(f"Drafted: {draft.name}.", f"On {_on(facts.current_aromatase_inhibitors)}.", *describe(shown)),
        advice=("NSAIDs and acetaminophen often disappoint in AIMSS. Add exercise and consider acupuncture"
                + ("; with BPI interference this high, start several treatments together." if severe else ".")),
        orders=(Order("Refer to a supervised exercise program", ("exercise-program",), recommended=True),
                Order("Refer for acupuncture", ("acupuncture-referral",))),
        unverified_codes=draft.unverified_codes,
    )


def ai_start_bone_health(facts: PatientFacts, knowledge: Knowledge, drafts: Drafts) -> Iterator[Finding]:
    draft = next(_drafted(drafts, AROMATASE_INHIBITORS), None)
    if draft is None or not facts.knows(DataSource.BONE_DENSITY):
        return
    interval = knowledge.rules.ai_start_bone_health.dxa_interval_months
    last = facts.last_bone_density_test
    if last is not None and last.when >= months_before(facts.today, interval):
        return
    seen = f"Last DXA {last.when.isoformat()}." if last else "No DXA on record."
    yield Finding(
        topic="ai-start-bone-health", indicator="info",
        summary="Starting an aromatase inhibitor: baseline DXA, calcium and vitamin D",
        evidence=(f"Drafted: {draft.name}.", seen, f"Rule: no DXA in {interval} months."),
        advice=("AIs accelerate bone loss: get a baseline DXA and start calcium and vitamin D. Warn "
                "the patient that joint pain and stiffness often start 6-8 weeks in, and to report it."),
        orders=(Order("Order baseline DXA", ("dxa-scan",), recommended=True),
                Order("Prescribe calcium and vitamin D", ("calcium-supplement", "vitamin-d-supplement"))),
        unverified_codes=draft.unverified_codes,
    )


SAFETY_RULES: tuple[OrderRule, ...] = (
    serm_with_ai, estrogen_with_ai, tamoxifen_cyp2d6, serotonergic_interaction, ai_with_tamoxifen,
)
ORDER_SELECT_RULES: tuple[OrderRule, ...] = (*SAFETY_RULES, analgesic_expectations, ai_start_bone_health)

SAFETY_DRAFT_GROUPS = frozenset({
    "serms", "systemic-estrogens", ROUTE_UNKNOWN_ESTROGENS, "tamoxifen", "cyp2d6-inhibitors-strong", "cyp2d6-inhibitors-moderate",
    "duloxetine", CONTRAINDICATED_WITH_DULOXETINE, "serotonergic-drugs", AROMATASE_INHIBITORS,
})
"""The drug groups a safety rule reads in a draft: a draft in none of them needs no chart read at
signing. (Vaginal estrogen is advice only, given at order-select.)"""
