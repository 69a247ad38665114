"""The recommendations: pure functions from ``PatientFacts`` and the knowledge to findings.

One function per topic, named after it (DESIGN §4); thresholds come from ``knowledge.rules``
(rules.toml), never from literals here. A rule whose data is unavailable does not fire: the
``data-incomplete`` card says what could not be read instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from cds_service.clinical.dates import months_before, whole_months_between
from cds_service.clinical.facts.model import (
    AI_INGREDIENTS,
    AROMATASE_INHIBITORS,
    INTERVENTION_SETS,
    BoneDensityTest,
    DataSource,
    Measurement,
    MedicationUse,
    PatientFacts,
    Record,
)
from cds_service.clinical.findings import Finding, Order
from cds_service.knowledge.loader import Knowledge

Rule = Callable[[PatientFacts, Knowledge], Finding | None]
Evidence = MedicationUse | BoneDensityTest | Measurement | Record
ANALGESICS = ("nsaids", "acetaminophen")


def evaluate_patient_view(facts: PatientFacts, knowledge: Knowledge) -> list[Finding]:
    """Findings for a patient on an aromatase inhibitor, or who has stopped one."""
    if facts.current_aromatase_inhibitors:
        rules = PATIENT_VIEW_RULES
    elif facts.ever(AROMATASE_INHIBITORS):
        rules = (switch_therapy, adherence)
    else:
        return []
    findings = [finding for rule in rules if (finding := rule(facts, knowledge))]
    if facts.unavailable:
        findings.append(data_incomplete(facts))
    return findings


# --- symptoms -------------------------------------------------------------------------------


def aimss_evidence(facts: PatientFacts, knowledge: Knowledge) -> tuple[Evidence, ...]:
    """What shows AIMSS: a recent pain score at or above the threshold, or a coded symptom."""
    latest = facts.latest_pain
    pain = (latest,) if latest and latest.value >= knowledge.rules.exercise.min_pain else ()
    return (*pain, *facts.has("aimss-symptoms"), *facts.has("hand-wrist-syndromes"))


def symptom_assessment(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    rules = knowledge.rules.symptom_assessment
    start = facts.ai_start
    if not facts.knows(DataSource.PAIN) or start is None:
        return None
    if facts.today - start < timedelta(weeks=rules.min_weeks_on_ai):
        return None
    window = facts.today - timedelta(days=rules.pain_score_within_days)
    if any(m.when >= window for m in (*facts.pain_scores, *facts.bpi_interference)):
        return None
    last = facts.latest_pain
    seen = f"Last pain score: {last.describe()}." if last else "No pain score or BPI on record."
    return Finding(
        topic="symptom-assessment",
        indicator="info",
        summary="Ask about joint pain and stiffness: no pain score recorded on the aromatase inhibitor",
        evidence=(*_ai_evidence(facts), seen,
                  f"Rule: on an AI for {rules.min_weeks_on_ai}+ weeks and no pain score in "
                  f"{rules.pain_score_within_days} days."),
        advice=("Ask about joint pain and stiffness at each visit and record a 0-10 pain score "
                "and the Brief Pain Inventory (short form). Joint pain predicts stopping the AI."),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors),
    )


def exercise(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    shown = aimss_evidence(facts, knowledge)
    if not shown:
        return None
    in_place = {s for s in INTERVENTION_SETS if facts.has(s)}
    offers = [
        Order("Refer to a supervised exercise program", ("exercise-program",), recommended=True),
        Order("Refer to physical therapy", ("physical-therapy-referral",)),
        Order("Refer for acupuncture", ("acupuncture-referral",)),
    ]
    kinds = {"exercise-program": offers[0], "physical-therapy": offers[1], "acupuncture": offers[2]}
    orders = tuple(order for kind, order in kinds.items() if kind not in in_place)
    if not orders:
        return None
    already = [f"Already in place: {r.describe()}." for s in sorted(in_place) for r in facts.has(s)]
    return Finding(
        topic="exercise",
        indicator="info",
        summary="AI-associated joint symptoms: prescribe exercise (150 min/week aerobic + resistance)",
        evidence=(*_ai_evidence(facts), *describe(shown), *already),
        advice=("Moderate aerobic exercise 150 minutes a week plus supervised resistance training "
                "2 days a week reduced worst joint pain by about 30% in the HOPE trial. Physical "
                "therapy helps where pain limits function; acupuncture (SWOG S1200) is a "
                "complement."),
        orders=orders,
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *shown),
    )


def multimodal_management(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    threshold = knowledge.rules.multimodal_management.min_bpi_interference
    latest = facts.latest_bpi_interference
    if latest is None or latest.value < threshold:
        return None
    duloxetine_ok = not facts.current("duloxetine") and not facts.current("maois-linezolid")
    third = ("duloxetine-30mg", "duloxetine") if duloxetine_ok else ("acupuncture-referral", "acupuncture")
    return Finding(
        topic="multimodal-management",
        indicator="warning",
        summary=f"Severe pain interference (BPI {latest.value:g}): start several treatments together, not stepwise",
        evidence=(*_ai_evidence(facts), latest.describe() + ".",
                  f"Rule: BPI interference at or above {threshold:g}."),
        advice=("In the seed cohort, patients with BPI interference of 7 or more who started two or "
                "more kinds of treatment together were far less likely to interrupt their AI "
                "(HR 0.125, 95% CI 0.042-0.378) than those treated one step at a time."),
        orders=(Order(f"Start exercise, physical therapy and {third[1]} together",
                      ("exercise-program", "physical-therapy-referral", third[0]), recommended=True),),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, latest),
    )


def duloxetine(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    rules = knowledge.rules.duloxetine
    if facts.current("duloxetine") or not facts.knows(DataSource.MEDICATIONS):
        return None
    latest, phq9 = facts.latest_pain, (facts.phq9[-1] if facts.phq9 else None)
    reasons: list[Evidence] = []
    if latest and latest.value >= rules.min_pain:
        reasons.append(latest)
    reasons += facts.has("neuropathic-features") + facts.has("depression")
    if phq9 and phq9.value >= rules.min_phq9:
        reasons.append(phq9)
    if not reasons:
        return None
    cautions = []
    blocked = facts.current("maois-linezolid")
    if blocked:
        cautions.append(f"Do not start: on {blocked[0].name} (MAOI/linezolid) - serotonin syndrome.")
    for drug in facts.current("serotonergic-drugs"):
        cautions.append(f"Serotonin-syndrome risk with {drug.name}.")
    for drug in facts.current("tamoxifen"):
        cautions.append(f"On {drug.name}: duloxetine is a moderate CYP2D6 inhibitor.")
    return Finding(
        topic="duloxetine",
        indicator="warning" if blocked else "info",
        summary="Consider duloxetine for AI joint pain (SWOG S1202)" + (": contraindicated now" if blocked else ""),
        evidence=(*_ai_evidence(facts), *describe(reasons), *cautions,
                  f"Rule: pain >= {rules.min_pain:g}, neuropathic features or depression "
                  f"(PHQ-9 >= {rules.min_phq9}), and not on duloxetine."),
        advice=("Duloxetine 30 mg daily for 1 week, then 60 mg daily, reduced AI-associated joint "
                "pain in SWOG S1202. Not with an MAOI (or within 14 days) or linezolid."),
        orders=() if blocked else (Order("Prescribe duloxetine 30 mg, then 60 mg", ("duloxetine-30mg",), recommended=True),),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *reasons),
    )


def analgesic_expectations(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    mild_max = knowledge.rules.analgesic_expectations.max_mild_pain
    latest = facts.latest_pain
    mild = latest if latest and knowledge.rules.exercise.min_pain <= latest.value <= mild_max else None
    analgesics = [m for group in ANALGESICS for m in facts.current(group)]
    if mild is None and not analgesics:
        return None
    return Finding(
        topic="analgesic-expectations",
        indicator="info",
        summary="NSAIDs and acetaminophen often disappoint for AI joint pain: set expectations",
        evidence=(*_ai_evidence(facts), *describe([*([mild] if mild else []), *analgesics])),
        advice=("Simple analgesics give limited relief in AIMSS. Set expectations, and pair them with "
                "exercise and, if needed, acupuncture or duloxetine."),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *analgesics),
    )


def hand_wrist(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    found = facts.has("hand-wrist-syndromes") + facts.has("hand-wrist-symptoms")
    if not found:
        return None
    return Finding(
        topic="hand-wrist",
        indicator="info",
        summary="Hand or wrist syndrome on an aromatase inhibitor: splint and hand therapy",
        evidence=(*_ai_evidence(facts), *describe(found)),
        advice=("Carpal tunnel, trigger finger and de Quervain tenosynovitis are common on AIs. "
                "Splint (neutral wrist or thumb spica), hand/occupational therapy; steroid "
                "injection if refractory; hand-surgery referral if still refractory."),
        orders=(Order("Refer to hand therapy", ("hand-therapy-referral",), recommended=True),),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *found),
    )


# --- bone health ----------------------------------------------------------------------------


def bone_density_scan(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    if not facts.knows(DataSource.BONE_DENSITY):
        return None
    rules = knowledge.rules.bone_density_scan
    interval = rules.dxa_interval_months
    last = facts.last_bone_density_test
    start = facts.ai_start
    baseline_missing = (
        start is not None and start >= months_before(facts.today, interval)
        and not any(abs(whole_months_between(min(t.when, start), max(t.when, start)))
                    <= rules.baseline_window_months for t in facts.bone_density_tests)
    )
    if last is not None and last.when >= months_before(facts.today, interval) and not baseline_missing:
        return None
    if last is None:
        dxa = "No DXA result, report or procedure is on record."
    else:
        dxa = f"Last DXA: {last.name} on {last.when.isoformat()} ({whole_months_between(last.when, facts.today)} months ago)."
    baseline = [f"No baseline DXA within {rules.baseline_window_months} months of the AI start."] if baseline_missing else []
    return Finding(
        topic="bone-density-scan",
        indicator="info",
        summary=f"No DXA in {interval} months on an aromatase inhibitor: order a bone density scan"
        if not baseline_missing or last is None else "No baseline DXA near the start of the aromatase inhibitor",
        evidence=(*_ai_evidence(facts), dxa, *baseline, f"Rule: a DXA at least every {interval} months on an AI."),
        advice=("Aromatase inhibitors accelerate bone loss. Order a central DXA (hip and lumbar "
                "spine) to guide bone-protective therapy."),
        orders=(Order("Order DXA bone density scan", activities=("dxa-scan",), recommended=True),),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *([last] if last else [])),
    )


def bone_protection(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    if not facts.knows(DataSource.MEDICATIONS, DataSource.BONE_DENSITY, DataSource.CONDITIONS):
        return None
    rules = knowledge.rules.bone_protection
    reasons: list[str] = []
    lowest = _lowest_latest_t_score(facts)
    if lowest and lowest.t_score is not None and lowest.t_score <= rules.max_t_score:
        reasons.append(f"Lowest T-score {lowest.t_score:g} ({lowest.name}, {lowest.when.isoformat()}, {lowest.source}); threshold {rules.max_t_score:g}.")
    for earlier, later in _t_score_falls(facts, rules.min_t_score_fall):
        reasons.append(f"T-score fell from {earlier.t_score:g} ({earlier.when.isoformat()}) to {later.t_score:g} ({later.when.isoformat()}) at {later.name}.")
    osteoporosis = facts.has("osteoporosis")
    reasons += [f"Osteoporosis: {r.describe()}." for r in osteoporosis]
    needs_agent = bool(reasons) and not facts.current("bone-modifying-agents")
    needs_supplements = not facts.current("calcium-vitamin-d")
    if not needs_agent and not needs_supplements:
        return None
    orders = []
    if needs_agent:
        orders.append(Order("Prescribe a bisphosphonate (alendronate)", ("bisphosphonate",), recommended=True))
    if needs_supplements:
        orders.append(Order("Prescribe calcium and vitamin D", ("calcium-supplement", "vitamin-d-supplement"),
                            recommended=not needs_agent))
        reasons.append("No calcium or vitamin D supplement on the medication list.")
    return Finding(
        topic="bone-protection",
        indicator="warning" if needs_agent else "info",
        summary="Low or falling bone density on an AI: start a bone-modifying agent" if needs_agent
        else "On an aromatase inhibitor without calcium and vitamin D",
        evidence=(*_ai_evidence(facts), *reasons),
        advice=("Bisphosphonate or denosumab at osteoporosis doses for low or falling bone density; "
                "calcium 1,200 mg/day total intake and vitamin D 800-1,000 IU/day for all. "
                "Never a SERM (raloxifene) with an AI."),
        orders=tuple(orders),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *osteoporosis),
    )


def _lowest_latest_t_score(facts: PatientFacts) -> BoneDensityTest | None:
    scored = [t for t in facts.bone_density_tests if t.t_score is not None]
    if not scored:
        return None
    latest = max(t.when for t in scored)
    return min((t for t in scored if t.when == latest), key=lambda t: t.t_score or 0.0)


def _t_score_falls(facts: PatientFacts, min_fall: float) -> list[tuple[BoneDensityTest, BoneDensityTest]]:
    by_site: dict[str, list[BoneDensityTest]] = {}
    for test in sorted(facts.bone_density_tests, key=lambda t: t.when):
        if test.t_score is not None:
            by_site.setdefault(test.site, []).append(test)
    return [
        (tests[-2], tests[-1]) for tests in by_site.values()
        if len(tests) >= 2 and (tests[-2].t_score or 0) - (tests[-1].t_score or 0) >= min_fall - 1e-9
    ]


# --- causes, persistence, safety ------------------------------------------------------------


def contributing_factors(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    if not facts.knows(DataSource.LABS, DataSource.CONDITIONS):
        return None
    shown = aimss_evidence(facts, knowledge)
    if not shown:
        return None
    rules = knowledge.rules.contributing_factors
    since = months_before(facts.today, rules.lab_within_months)
    checks = (  # (name on the card, results, order, is the latest result abnormal?)
        ("TSH", facts.tsh, "tsh-test", lambda m: m.abnormal is True),
        ("25-OH vitamin D", facts.vitamin_d, "vitamin-d-test", lambda m: m.value < rules.min_vitamin_d_ng_ml),
        ("PHQ-9", facts.phq9, "phq9-screen", lambda m: m.value >= rules.min_phq9),
    )
    reasons, activities, names = [], [], []
    for name, results, activity, is_abnormal in checks:
        recent = [m for m in results if m.when >= since]
        if not recent:
            reasons.append(f"No {name} in the last {rules.lab_within_months} months.")
        elif is_abnormal(recent[-1]):
            reasons.append(f"Abnormal: {recent[-1].describe()}.")
        else:
            continue
        activities.append(activity)
        names.append(name)
    if not reasons:
        return None
    return Finding(
        topic="contributing-factors",
        indicator="info",
        summary="Check thyroid, vitamin D and mood before blaming the AI for joint symptoms",
        evidence=(*_ai_evidence(facts), *describe(shown), *reasons),
        advice=("Hypothyroidism, vitamin D deficiency and depression cause or worsen joint and muscle "
                "pain. Check them before attributing symptoms to the AI."),
        orders=(Order("Order " + ", ".join(names),
                      tuple(activities), recommended=True),),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *shown),
    )


def switch_therapy(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    rules = knowledge.rules.switch_therapy
    reasons: list[str] = []
    high = [m for m in facts.pain_scores if m.value >= rules.min_pain]
    interventions = _interventions_in_place(facts)
    if (high and facts.latest_pain is high[-1] and high[-1].when - high[0].when >= timedelta(weeks=rules.min_weeks_apart)
            and len(interventions) >= rules.min_interventions):
        reasons.append(f"Pain persisting: {high[0].describe()} and {high[-1].describe()}.")
        reasons += [f"Despite: {item}." for item in interventions]
    stopped = [m for m in facts.ever(AROMATASE_INHIBITORS) if m.status in ("stopped", "completed")
               and _stopped_for_symptoms(m, rules.stop_reason_words)]
    reasons += [f"Stopped for symptoms: {m.name} ({m.source}), reason: {m.status_reason or 'coded symptom'}." for m in stopped]
    if not reasons:
        return None
    tried = {i for m in facts.ever(AROMATASE_INHIBITORS) for i in m.groups if i in AI_INGREDIENTS}
    failed = {i for m in stopped for i in m.groups if i in tried}
    next_step = ("Two or more AIs have failed: discuss tamoxifen (check CYP2D6 inhibitors first)."
                 if len(failed) >= 2 else "Discuss switching to another AI after a short break: about a third tolerate a different one.")
    return Finding(
        topic="switch-therapy",
        indicator="warning",
        summary="AIMSS persisting: discuss switching endocrine therapy with oncology",
        evidence=(*_ai_evidence(facts), *reasons, f"AIs tried: {', '.join(sorted(tried)) or 'unknown'}."),
        advice=next_step + " With metastatic disease and limited prognosis, discuss stopping.",
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors),
    )


def _stopped_for_symptoms(use: MedicationUse, words: tuple[str, ...]) -> bool:
    if use.status_reason_groups & {"aimss-symptoms", "hand-wrist-syndromes", "neuropathic-features"}:
        return True
    text = (use.status_reason or "").lower()
    return any(word.lower() in text for word in words)


def _interventions_in_place(facts: PatientFacts) -> list[str]:
    records = [r.describe() for s in INTERVENTION_SETS for r in facts.has(s)]
    drugs = [f"{m.name} ({m.source})" for g in ("duloxetine", *ANALGESICS, "neuropathic-analgesics") for m in facts.current(g)]
    return records + drugs


def red_flags(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    rise = knowledge.rules.red_flags.min_pain_rise
    if len(facts.pain_scores) < 2 or not facts.knows(DataSource.INTERVENTIONS, DataSource.MEDICATIONS):
        return None
    first, last = facts.pain_scores[0], facts.pain_scores[-1]
    treatments = _interventions_in_place(facts)
    if last.value - first.value < rise or not treatments:
        return None
    return Finding(
        topic="red-flags",
        indicator="warning",
        summary="Joint pain worsening despite treatment: consider recurrence or another cause",
        evidence=(*_ai_evidence(facts), f"Pain rose from {first.describe()} to {last.describe()}.",
                  *(f"On treatment: {t}." for t in treatments), f"Rule: a rise of {rise:g} or more despite treatment."),
        advice=("Worsening pain despite treatment, new focal bone pain, lymphedema, chest-wall or "
                "axillary symptoms, or new neurological findings call for evaluation for recurrence "
                "or another cause: examine, image or refer."),
    )


def adherence(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    if facts.current_aromatase_inhibitors:
        return None
    paused = [m for m in facts.ever(AROMATASE_INHIBITORS) if m.status in ("stopped", "on-hold", "not-taken")]
    shown = aimss_evidence(facts, knowledge)
    if not paused or not shown:
        return None
    return Finding(
        topic="adherence",
        indicator="warning",
        summary="Aromatase inhibitor stopped or on hold with joint symptoms: treat symptoms to resume it",
        evidence=(*(f"{m.name}: {m.status} ({m.source})" + (f", reason: {m.status_reason}" if m.status_reason else "") + "." for m in paused),
                  *describe(shown)),
        advice=("Stopping the AI early raises the risk of recurrence. Treat the symptoms (exercise, "
                "duloxetine, acupuncture) and discuss resuming or switching the AI."),
        unverified_codes=_unverified(*paused, *shown),
    )


def data_incomplete(facts: PatientFacts) -> Finding:
    return Finding(
        topic="data-incomplete",
        indicator="warning",
        summary="Some patient data could not be read: AIMSS guidance may be incomplete",
        evidence=(),
        unreadable=facts.unavailable,
        advice=("Recommendations that depend on this data were not evaluated. The absence of a card "
                "is not reassurance; review these data in the chart."),
    )


def describe(items: list[Evidence] | tuple[Evidence, ...]) -> tuple[str, ...]:
    lines = []
    for item in items:
        if isinstance(item, MedicationUse):
            lines.append(f"On {item.name} ({item.source}).")
        elif isinstance(item, Measurement | Record):
            lines.append(item.describe() + ".")
    return tuple(lines)


def _unverified(*sources: Evidence) -> tuple[str, ...]:
    return tuple(sorted({code for source in sources for code in source.unverified_codes}))


def _ai_evidence(facts: PatientFacts) -> tuple[str, ...]:
    return tuple(
        f"On {use.name}" + (f" since {use.start.isoformat()}" if use.start else "") + f" ({use.source})."
        for use in facts.current_aromatase_inhibitors
    )


PATIENT_VIEW_RULES: tuple[Rule, ...] = (
    symptom_assessment, exercise, multimodal_management, duloxetine, analgesic_expectations,
    hand_wrist, bone_density_scan, bone_protection, contributing_factors, switch_therapy,
    red_flags, adherence,
)
