"""The recommendations: pure functions from ``PatientFacts`` and the knowledge to findings.

One function per topic, named after it (DESIGN §4); thresholds come from ``knowledge.rules``
(rules.toml), never from literals here. A rule whose data is unavailable does not fire: the
``data-incomplete`` card says what could not be read instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

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
from cds_service.clinical.rules.bone_agent_safety import (
    agent_check,
    lapsed_denosumab,
    other_bone_agents,
)
from cds_service.clinical.rules.duloxetine_safety import DuloxetineSafety, duloxetine_safety
from cds_service.knowledge.loader import Knowledge

Rule = Callable[[PatientFacts, Knowledge], Finding | None]
Evidence = MedicationUse | BoneDensityTest | Measurement | Record
ANALGESICS = ("nsaids", "acetaminophen")


def evaluate_patient_view(facts: PatientFacts, knowledge: Knowledge) -> list[Finding]:
    """Findings for a patient on an aromatase inhibitor, or who has stopped one; an AI given for
    another indication (letrozole for ovulation induction) is not one."""
    facts = _without_other_indications(facts, knowledge)
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


def _without_other_indications(facts: PatientFacts, knowledge: Knowledge) -> PatientFacts:
    """The facts without AI records given for something other than breast cancer: a reason (or,
    with no breast cancer coded, an active diagnosis) in the other-indication sets, or a short
    course. A missing breast-cancer diagnosis alone changes nothing."""
    rules = knowledge.rules.other_indications
    diagnosed = any(facts.has(group) for group in rules.reason_sets) and not facts.has("breast-cancer")

    def other(use: MedicationUse) -> bool:
        if not use.belongs_to(AROMATASE_INHIBITORS):
            return False
        short = use.planned_days is not None and use.planned_days <= rules.max_course_days
        return short or diagnosed or bool(use.reason_groups.intersection(rules.reason_sets))

    kept = tuple(use for use in facts.medications if not other(use))
    return facts if len(kept) == len(facts.medications) else replace(facts, medications=kept)


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
    safety = duloxetine_safety(facts, knowledge)
    bundle = _bundle(facts, safety)
    offers_duloxetine = any(name == "duloxetine" for _, name in bundle)
    return Finding(
        topic="multimodal-management",
        indicator="warning",
        summary=f"Severe pain interference (BPI {latest.value:g}): start several treatments together, not stepwise",
        evidence=(*_ai_evidence(facts), latest.describe() + ".",
                  *_in_place_lines(facts), *(safety.lines() if offers_duloxetine or not safety.allowed else ()),
                  f"Rule: BPI interference at or above {threshold:g}."),
        advice=("In a single-centre retrospective cohort, patients with BPI interference of 7 or more "
                "who started two or more kinds of treatment together interrupted their AI less often "
                "(composite endpoint of interruption, recurrence or death; HR 0.125, 95% CI "
                "0.042-0.378). The study was observational and did not test this particular bundle."),
        orders=(Order(f"Start {_joined([name for _, name in bundle])} together",
                      tuple(activity for activity, _ in bundle), recommended=True),) if len(bundle) >= 2 else (),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, latest),
    )


def _bundle(facts: PatientFacts, safety: DuloxetineSafety) -> list[tuple[str, str]]:
    """The treatments to start together: none already in place, duloxetine only when safe."""
    candidates = [("exercise-program", "exercise-program", "exercise"),
                  ("physical-therapy", "physical-therapy-referral", "physical therapy")]
    if safety.allowed and not facts.current("duloxetine"):
        candidates.append(("duloxetine", "duloxetine-30mg", "duloxetine"))
    candidates.append(("acupuncture", "acupuncture-referral", "acupuncture"))
    fresh = [(activity, name) for kind, activity, name in candidates
             if not facts.has(kind) and not facts.current(kind)]
    return fresh[:3]


def _in_place_lines(facts: PatientFacts) -> list[str]:
    return [f"Already in place: {r.describe()}." for s in INTERVENTION_SETS for r in facts.has(s)]


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def duloxetine(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    rules = knowledge.rules.duloxetine
    if facts.current("duloxetine") or not facts.knows(DataSource.MEDICATIONS):
        return None
    latest, phq9 = facts.latest_pain, (facts.phq9[-1] if facts.phq9 else None)
    reasons: list[Evidence] = []
    if latest and latest.value >= rules.min_pain:
        reasons.append(latest)
    reasons += neuropathic_features(facts, knowledge) + facts.has("depression")
    if phq9 and phq9.value >= rules.min_phq9:
        reasons.append(phq9)
    if not reasons:
        return None
    safety = duloxetine_safety(facts, knowledge)
    cautions = list(safety.lines())
    for drug in facts.current("tamoxifen"):
        cautions.append(f"On {drug.name}: duloxetine is a moderate CYP2D6 inhibitor.")
    blocked = not safety.allowed
    return Finding(
        topic="duloxetine",
        indicator="warning" if blocked or cautions else "info",
        summary="Consider duloxetine for AI joint pain (SWOG S1202)" + (": contraindicated now" if blocked else ""),
        evidence=(*_ai_evidence(facts), *describe(reasons), *cautions,
                  f"Rule: pain >= {rules.min_pain:g}, neuropathic features or depression "
                  f"(PHQ-9 >= {rules.min_phq9}), and not on duloxetine."),
        advice=("Duloxetine 30 mg daily for 7 days, then 60 mg daily; review at 12 weeks and, to "
                "stop, taper over 2 weeks or more. In SWOG S1202 it lowered average joint pain by "
                "about 0.8 points more than placebo, and the difference faded after stopping."),
        orders=() if blocked else (Order("Prescribe duloxetine 30 mg daily for 7 days, then 60 mg daily",
                                         ("duloxetine-30mg",), recommended=True),),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *reasons),
    )


def neuropathic_features(facts: PatientFacts, knowledge: Knowledge) -> tuple[Record, ...]:
    """Coded neuropathic features that no entrapment explains (DESIGN §4): carpal tunnel is not
    one, and while an entrapment is on the chart, numbness or tingling alone is its symptom."""
    rules = knowledge.rules.duloxetine
    entrapments = {id(r) for group in rules.entrapment_sets for r in facts.has(group)}
    explained = set(rules.explained_symptom_sets) if entrapments else set()
    return tuple(r for r in facts.has("neuropathic-features")
                 if id(r) not in entrapments and not r.groups & explained)


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
                "exercise and, if needed, acupuncture."),
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
    recent_start = start is not None and start >= months_before(facts.today, interval)
    baseline_missing = recent_start and start is not None and not any(
        t.when >= months_before(start, rules.baseline_window_months) for t in facts.bone_density_tests
    )
    if last is not None and last.when >= months_before(facts.today, interval) and not baseline_missing:
        return None
    if last is None:
        dxa = "No DXA result, report or procedure is on record."
    else:
        dxa = f"Last DXA: {last.name} on {last.when.isoformat()} ({whole_months_between(last.when, facts.today)} months ago)."
    baseline = ([f"No DXA from {rules.baseline_window_months} months before the AI start onwards: "
                 "no baseline."] if baseline_missing else [])
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


_GUIDELINE_NAMES = {"hadji-2017": "Hadji 2017 AI-specific consensus", "asco-2019": "ASCO 2019"}


def bone_protection(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    if not facts.knows(DataSource.MEDICATIONS, DataSource.BONE_DENSITY, DataSource.CONDITIONS):
        return None
    rules = knowledge.rules.bone_protection
    reasons = _bone_agent_reasons(facts, knowledge)
    on_agent = other_bone_agents(facts)
    lapse = lapsed_denosumab(facts, rules.denosumab_interval_months)
    needs_agent = bool(reasons) and not on_agent
    needs_supplements = not facts.current("calcium-vitamin-d")
    if not needs_agent and not needs_supplements and lapse is None:
        return None
    evidence = [*_ai_evidence(facts), *reasons]
    orders = []
    if lapse is not None:
        evidence.append(lapse)
    if needs_agent:
        check = agent_check(facts, rules.agent_min_kidney_function, rules.agent_contraindication_sets,
                            knowledge.rules.contributing_factors.min_vitamin_d_ng_ml)
        evidence += [*check.contraindications, *check.considered]
        if check.allowed and lapse is None:
            title = knowledge.activities[rules.agent_activity].get("title", "Prescribe a bisphosphonate")
            orders.append(Order(title, (rules.agent_activity,), recommended=True))
    elif reasons:
        evidence.append(f"Already on {', '.join(dict.fromkeys(u.name for u in on_agent))}.")
    if needs_supplements:
        orders.append(Order("Prescribe calcium and vitamin D", ("calcium-supplement", "vitamin-d-supplement"),
                            recommended=not orders))
        evidence.append("No calcium or vitamin D supplement on the medication list.")
    guideline = _GUIDELINE_NAMES[rules.t_score_guideline]
    summary = ("Denosumab lapsed: rebound vertebral fracture risk" if lapse
               else "Low or falling bone density on an AI: start a bone-modifying agent" if needs_agent
               else "On an aromatase inhibitor without calcium and vitamin D")
    return Finding(
        topic="bone-protection",
        indicator="warning" if needs_agent or lapse else "info",
        summary=summary,
        evidence=tuple(evidence),
        advice=(f"Bone-modifying agent (bisphosphonate or denosumab) for a T-score at or below "
                f"{rules.max_t_score:g} ({guideline}), osteoporosis, a fragility fracture or a fall into "
                "the osteopenic range. Calcium 1,200 mg/day in total, from diet first, topped up with "
                "a supplement; vitamin D 800-1,000 IU/day. Never a SERM (raloxifene) with an AI."
                + (" FRAX is not read: check it if the T-score is above the threshold." if rules.t_score_guideline == "asco-2019" else "")),
        orders=tuple(orders),
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors, *facts.has("osteoporosis")),
    )


def _bone_agent_reasons(facts: PatientFacts, knowledge: Knowledge) -> list[str]:
    """Why a bone-modifying agent is indicated: the site's T-score threshold, osteoporosis, a
    fragility fracture, or a fall from normal into the osteopenic range since the last scan."""
    rules = knowledge.rules.bone_protection
    reasons: list[str] = []
    lowest = _lowest_latest_t_score(facts)
    if lowest and lowest.t_score is not None and lowest.t_score <= rules.max_t_score:
        reasons.append(f"Lowest T-score {lowest.t_score:g} ({lowest.name}, {lowest.when.isoformat()}); "
                       f"threshold {rules.max_t_score:g} ({_GUIDELINE_NAMES[rules.t_score_guideline]}).")
    for earlier, later in _falls_into_osteopenia(facts, rules.osteopenia_t_score, rules.min_t_score_fall):
        reasons.append(f"T-score fell from {earlier.t_score:g} ({earlier.when.isoformat()}) to "
                       f"{later.t_score:g} ({later.when.isoformat()}) at {later.name}: now osteopenic.")
    reasons += [f"Osteoporosis: {r.describe()}." for r in facts.has("osteoporosis")]
    reasons += [f"Fragility fracture: {r.describe()}." for g in rules.fracture_sets for r in facts.has(g)]
    return reasons


def _lowest_latest_t_score(facts: PatientFacts) -> BoneDensityTest | None:
    scored = [t for t in facts.bone_density_tests if t.t_score is not None]
    if not scored:
        return None
    latest = max(t.when for t in scored)
    return min((t for t in scored if t.when == latest), key=lambda t: t.t_score or 0.0)


def _falls_into_osteopenia(
    facts: PatientFacts, osteopenia: float, min_fall: float
) -> list[tuple[BoneDensityTest, BoneDensityTest]]:
    """Sites whose last two scans went from a normal T-score to one at or below ``osteopenia``,
    by at least ``min_fall``."""
    by_site: dict[str, list[BoneDensityTest]] = {}
    for test in sorted(facts.bone_density_tests, key=lambda t: t.when):
        if test.t_score is not None:
            by_site.setdefault(test.site, []).append(test)
    return [
        (tests[-2], tests[-1]) for tests in by_site.values()
        if len(tests) >= 2 and (tests[-2].t_score or 0) > osteopenia >= (tests[-1].t_score or 0)
        and (tests[-2].t_score or 0) - (tests[-1].t_score or 0) >= min_fall - 1e-9
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
    if high and facts.latest_pain is high[-1] and high[-1].when - high[0].when >= timedelta(weeks=rules.min_weeks_apart):
        settled = high[-1].when - timedelta(weeks=rules.min_weeks_in_place)
        tried = [(name, since) for name, since in _treatments(facts)
                 if since <= high[0].when and since <= settled]
        if len(tried) >= rules.min_interventions:
            reasons.append(f"Pain persisting: {high[0].describe()} and {high[-1].describe()}.")
            reasons += [f"Despite: {name}, since {since.isoformat()}." for name, since in tried]
    stopped = [m for m in facts.ever(AROMATASE_INHIBITORS) if m.status in ("stopped", "completed")
               and _stopped_for_symptoms(m, rules.stop_reason_words)]
    reasons += [f"Stopped for symptoms: {m.name}, reason: {m.status_reason or 'coded symptom'}." for m in stopped]
    if not reasons:
        return None
    tried_ais = {i for m in facts.ever(AROMATASE_INHIBITORS) for i in m.groups if i in AI_INGREDIENTS}
    failed = {i for m in stopped for i in m.groups if i in tried_ais}
    next_step = ("Two or more AIs have failed: discuss tamoxifen (check CYP2D6 inhibitors first)."
                 if len(failed) >= 2 else "Discuss switching to another AI after a short break: about a third tolerate a different one.")
    metastatic = [r for group in rules.metastatic_sets for r in facts.has(group)]
    if metastatic:
        reasons.append(f"Metastatic disease: {', '.join(r.describe() for r in metastatic)}.")
        next_step += " With metastatic disease and limited prognosis, discuss stopping endocrine therapy."
    return Finding(
        topic="switch-therapy",
        indicator="warning",
        summary="AIMSS persisting: discuss switching endocrine therapy with oncology",
        evidence=(*_ai_evidence(facts), *reasons, f"AIs tried: {', '.join(sorted(tried_ais)) or 'unknown'}."),
        advice=next_step,
        unverified_codes=_unverified(*facts.current_aromatase_inhibitors),
    )


def _stopped_for_symptoms(use: MedicationUse, words: tuple[str, ...]) -> bool:
    if use.status_reason_groups & {"aimss-symptoms", "hand-wrist-syndromes", "neuropathic-features"}:
        return True
    text = (use.status_reason or "").lower()
    return any(word.lower() in text for word in words)


def _treatments(facts: PatientFacts) -> list[tuple[str, date]]:
    """Treatments in place with the date each started; one without a start date cannot be timed
    against the pain readings and is left out."""
    records = [(r.name, r.when) for s in INTERVENTION_SETS for r in facts.has(s) if r.when]
    drugs = [(m.name, m.start) for g in ("duloxetine", *ANALGESICS, "neuropathic-analgesics")
             for m in facts.current(g) if m.start]
    return records + drugs


def red_flags(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    rules = knowledge.rules.red_flags
    found = [r for group in rules.condition_sets for r in facts.has(group)]
    evidence = [f"{r.describe()}." for r in found]
    worsening = _worsening_on_treatment(facts, rules.min_pain_rise) if facts.knows(
        DataSource.INTERVENTIONS, DataSource.MEDICATIONS) else None
    if worsening is not None:
        (name, since), low, last = worsening
        evidence.append(f"Pain rose from {low.describe()} to {last.describe()} on {name} "
                        f"(since {since.isoformat()}).")
    if not evidence:
        return None
    summary = ("Joint pain worsening despite treatment: consider recurrence or another cause"
               if worsening and not found else
               f"{found[0].name}: consider recurrence or another cause")
    return Finding(
        topic="red-flags",
        indicator="warning",
        summary=summary[:139],
        evidence=(*_ai_evidence(facts), *evidence),
        advice=("Worsening pain despite treatment, new focal bone pain, lymphedema, chest-wall or "
                "axillary findings, or new neurological findings call for evaluation for recurrence "
                "or another cause: examine, image or refer."),
        unverified_codes=_unverified(*found),
    )


def _worsening_on_treatment(
    facts: PatientFacts, rise: float
) -> tuple[tuple[str, date], Measurement, Measurement] | None:
    """A rise of ``rise`` or more from a reading taken on a treatment (on or after its start) to
    the latest reading: the treatment preceded the rise."""
    last = facts.latest_pain
    if last is None:
        return None
    for treatment in _treatments(facts):
        on_it = [m for m in facts.pain_scores if m.when >= treatment[1] and m is not last]
        low = min(on_it, key=lambda m: m.value, default=None)
        if low is not None and last.value - low.value >= rise:
            return treatment, low, last
    return None


def adherence(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    if facts.current_aromatase_inhibitors:
        return None
    paused = [m for m in facts.ever(AROMATASE_INHIBITORS) if m.status in ("stopped", "on-hold", "not-taken")]
    shown = aimss_evidence(facts, knowledge)
    if not paused or not shown:
        return None
    safety = duloxetine_safety(facts, knowledge)
    options = "exercise, acupuncture" + (", duloxetine" if safety.allowed and not facts.current("duloxetine") else "")
    return Finding(
        topic="adherence",
        indicator="warning",
        summary="Aromatase inhibitor stopped or on hold with joint symptoms: treat symptoms to resume it",
        evidence=(*(f"{m.name}: {m.status}" + (f", reason: {m.status_reason}" if m.status_reason else "") + "." for m in paused),
                  *describe(shown), *safety.lines()),
        advice=(f"Stopping the AI early raises the risk of recurrence. Treat the symptoms ({options}) "
                "and discuss resuming or switching the AI."),
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
            lines.append(f"On {item.name}.")
        elif isinstance(item, Measurement | Record):
            lines.append(item.describe() + ".")
    return tuple(lines)


def _unverified(*sources: Evidence) -> tuple[str, ...]:
    return tuple(sorted({code for source in sources for code in source.unverified_codes}))


def _ai_evidence(facts: PatientFacts) -> tuple[str, ...]:
    return tuple(
        f"On {use.name}" + (f" since {use.start.isoformat()}" if use.start else "") + "."
        for use in facts.current_aromatase_inhibitors
    )


PATIENT_VIEW_RULES: tuple[Rule, ...] = (
    symptom_assessment, exercise, multimodal_management, duloxetine, analgesic_expectations,
    hand_wrist, bone_density_scan, bone_protection, contributing_factors, switch_therapy,
    red_flags, adherence,
)
