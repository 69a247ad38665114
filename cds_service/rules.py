"""The recommendations: pure functions from ``PatientFacts`` and the knowledge to findings.

One function per topic, named after it; thresholds come from ``knowledge.rules`` (rules.toml),
never from literals here.
"""

from __future__ import annotations

from collections.abc import Callable

from .dates import months_before, whole_months_between
from .facts import BONE_DENSITY, BoneDensityTest, MedicationUse, PatientFacts
from .findings import Finding, Order
from .knowledge import Knowledge

Rule = Callable[[PatientFacts, Knowledge], Finding | None]


def evaluate_patient_view(facts: PatientFacts, knowledge: Knowledge) -> list[Finding]:
    """Findings for a chart opened on a patient who is on, or has taken, an aromatase inhibitor."""
    if not facts.current_aromatase_inhibitors:
        return []
    findings = [finding for rule in PATIENT_VIEW_RULES if (finding := rule(facts, knowledge))]
    if facts.unavailable:
        findings.append(data_incomplete(facts))
    return findings


def bone_density_scan(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    if not facts.knows(BONE_DENSITY):
        return None
    interval = knowledge.rules.bone_density_scan.dxa_interval_months
    last = facts.last_bone_density_test
    if last is not None and last.when >= months_before(facts.today, interval):
        return None
    if last is None:
        dxa = "No DXA result, report or procedure is on record."
    else:
        months = whole_months_between(last.when, facts.today)
        dxa = f"Last DXA: {last.name} on {last.when.isoformat()} ({months} months ago)."
    return Finding(
        topic="bone-density-scan",
        indicator="info",
        summary=f"No DXA in {interval} months on an aromatase inhibitor: order a bone density scan",
        evidence=(*_ai_evidence(facts), dxa, f"Rule: a DXA at least every {interval} months on an AI."),
        advice=(
            "Aromatase inhibitors accelerate bone loss. Order a central DXA (hip and lumbar "
            "spine) to guide bone-protective therapy."
        ),
        orders=(Order("Order DXA bone density scan", activities=("dxa-scan",), recommended=True),),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *([last] if last else [])),
    )


def data_incomplete(facts: PatientFacts) -> Finding:
    missing = ", ".join(sorted(facts.unavailable))
    return Finding(
        topic="data-incomplete",
        indicator="warning",
        summary="Some patient data could not be read: AIMSS guidance may be incomplete",
        evidence=(f"Could not be read from the EHR: {missing}.",),
        advice=(
            "Recommendations that depend on this data were not evaluated. The absence of a card "
            "is not reassurance; review these data in the chart."
        ),
    )


def _unverified(*sources: MedicationUse | BoneDensityTest) -> tuple[str, ...]:
    return tuple(sorted({code for source in sources for code in source.unverified_codes}))


def _ai_evidence(facts: PatientFacts) -> tuple[str, ...]:
    return tuple(_describe_use(use) for use in facts.current_aromatase_inhibitors)


def _describe_use(use: MedicationUse) -> str:
    since = f" since {use.start.isoformat()}" if use.start else ""
    return f"On {use.name}{since} ({use.source})."


PATIENT_VIEW_RULES: tuple[Rule, ...] = (bone_density_scan,)
