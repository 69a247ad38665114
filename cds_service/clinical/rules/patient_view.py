"""The recommendations: pure functions from ``PatientFacts`` and the knowledge to findings.

One function per topic, named after it (DESIGN §4); thresholds come from ``knowledge.rules``
(rules.toml), never from literals here, and wording from card-text.toml: a rule returns its
topic, indicator, the data it read, the values its wording needs and its orders (by
ActivityDefinition id). A rule whose data is unavailable does not fire: the
``data-incomplete`` finding says what could not be read instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
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
from cds_service.clinical.findings import Datum, Finding, Indicator, Order
from cds_service.clinical.rules.bone_agent_safety import (
    agent_check,
    lapsed_denosumab,
    other_bone_agents,
)
from cds_service.clinical.rules.duloxetine_safety import DuloxetineSafety, duloxetine_safety
from cds_service.clinical.rules.names import drug, names, plain
from cds_service.knowledge.loader import Knowledge
from cds_service.knowledge.wording import ParamValue

Rule = Callable[[PatientFacts, Knowledge], Finding | None]
Params = dict[str, ParamValue]
ANALGESICS = ("nsaids", "acetaminophen")
INTERVENTION_ORDERS = {
    "exercise-program": "exercise-program",
    "physical-therapy": "physical-therapy-referral",
    "acupuncture": "acupuncture-referral",
}


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


# --- what every patient-view rule shows -----------------------------------------------------


def state(facts: PatientFacts) -> Params:
    """The patient's AI and latest scores, for any template that names them."""
    params: Params = {}
    if ais := facts.current_aromatase_inhibitors:
        params["ai"] = ingredient(ais[0])
        if (start := facts.ai_start) is not None:
            params["ai_since"] = start
            params["ai_months"] = whole_months_between(start, facts.today)
    if (pain := facts.latest_pain) is not None:
        params["pain"] = score(pain)
        params["pain_date"] = pain.when
    if (bpi := facts.latest_bpi_interference) is not None:
        params["bpi"] = interference(bpi)
        params["bpi_date"] = bpi.when
    return params


def symptom_urgency(facts: PatientFacts, knowledge: Knowledge) -> Indicator:
    """The AIMSS plan is a warning at high pain or pain interference (rules.toml [aimss-plan])."""
    rules = knowledge.rules.aimss_plan
    pain, bpi = facts.latest_pain, facts.latest_bpi_interference
    if (pain and pain.value >= rules.warning_min_pain) or (
        bpi and bpi.value >= rules.warning_min_bpi_interference
    ):
        return "warning"
    return "info"


def ingredient(use: MedicationUse) -> str:
    return next((name for name in AI_INGREDIENTS if name in use.groups), use.name)


def score(measurement: Measurement) -> str:
    return f"{measurement.value:g}/10"


def interference(measurement: Measurement) -> str:
    """A BPI interference score as a clinician reads it: one decimal (a mean of 7 items)."""
    return f"{round(measurement.value, 1):g}"


def dxa_site(test: BoneDensityTest) -> str:
    """The site a DXA result names ("DXA Femur [T-score] ..." -> "femur"), else its name."""
    found = re.match(r"DXA (.+?) \[", test.name)
    return found.group(1).lower() if found else plain(test.name)


def ai_data(facts: PatientFacts) -> tuple[Datum, ...]:
    return tuple(Datum(ingredient(use), when=use.start, since=True) for use in facts.current_aromatase_inhibitors)


def data_of(items: Iterable[MedicationUse | Measurement | Record | BoneDensityTest]) -> tuple[Datum, ...]:
    """Data items a card lists: drugs with their start, scores and records with their date."""
    found = []
    for item in items:
        if isinstance(item, MedicationUse):
            found.append(Datum(drug(item), when=item.start, since=True))
        elif isinstance(item, Measurement):
            found.append(Datum(item.name, f"{item.value:g}", item.when))
        elif isinstance(item, BoneDensityTest):
            if item.t_score is None:
                found.append(Datum("DXA", when=item.when))
            else:
                found.append(Datum(f"DXA T-score ({dxa_site(item)})", f"{item.t_score:g}", item.when))
        else:
            found.append(Datum(plain(item.name), when=item.when))
    return tuple(found)


def pain_datum(measurement: Measurement) -> Datum:
    return Datum("pain", score(measurement), measurement.when)


# --- symptoms -------------------------------------------------------------------------------


def aimss_evidence(facts: PatientFacts, knowledge: Knowledge) -> tuple[Measurement | Record, ...]:
    """What shows AIMSS: a recent pain score at or above the threshold, or a coded symptom."""
    latest = facts.latest_pain
    pain = (latest,) if latest and latest.value >= knowledge.rules.exercise.min_pain else ()
    return (*pain, *facts.has("aimss-symptoms"), *facts.has("hand-wrist-syndromes"))


def _shown_data(shown: Iterable[Measurement | Record]) -> tuple[Datum, ...]:
    return tuple(pain_datum(s) if isinstance(s, Measurement) else Datum(plain(s.name), when=s.when) for s in shown)


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
    return Finding(
        topic="symptom-assessment",
        indicator="info",
        evidence=(*ai_data(facts), *((pain_datum(last),) if last else ())),
        params={**state(facts), "window_days": rules.pain_score_within_days},
    )


def exercise(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    shown = aimss_evidence(facts, knowledge)
    if not shown:
        return None
    in_place = [s for s in INTERVENTION_SETS if facts.has(s)]
    orders = tuple(
        Order((activity,), recommended=kind == "exercise-program")
        for kind, activity in INTERVENTION_ORDERS.items() if kind not in in_place
    )
    if not orders:
        return None
    records = [r for s in in_place for r in facts.has(s)]
    params: Params = {**state(facts)}
    if coded := [s for s in shown if isinstance(s, Record)]:
        params["symptoms"] = names(coded)
    if records:
        params["in_place"] = names(records)
    return Finding(
        topic="exercise",
        indicator=symptom_urgency(facts, knowledge),
        evidence=(*ai_data(facts), *_shown_data(shown), *data_of(records)),
        params=params,
        orders=orders,
    )


def multimodal_management(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    threshold = knowledge.rules.multimodal_management.min_bpi_interference
    latest = facts.latest_bpi_interference
    if latest is None or latest.value < threshold:
        return None
    safety = duloxetine_safety(facts, knowledge)
    together = _bundle(facts, safety)
    in_place = [r for s in INTERVENTION_SETS for r in facts.has(s)]
    params: Params = {**state(facts), "bpi_threshold": threshold}
    if in_place:
        params["in_place"] = names(in_place)
    if "duloxetine-30mg" in together or not safety.allowed:
        params |= safety.params()
    return Finding(
        topic="multimodal-management",
        indicator="warning",
        evidence=(*ai_data(facts), Datum("BPI interference", interference(latest), latest.when),
                  *data_of(in_place), *_safety_data(safety)),
        params=params,
        orders=(Order(together, recommended=True),) if len(together) >= 2 else (),
    )


def _bundle(facts: PatientFacts, safety: DuloxetineSafety) -> tuple[str, ...]:
    """Up to three treatments to start together, none already in place; duloxetine only when
    its safety check allows it."""
    kinds = ["exercise-program", "physical-therapy"]
    if safety.allowed and not facts.current("duloxetine"):
        kinds.append("duloxetine")
    kinds.append("acupuncture")
    orders = {"duloxetine": "duloxetine-30mg", **INTERVENTION_ORDERS}
    fresh = [orders[kind] for kind in kinds if kind == "duloxetine" or not facts.has(kind)]
    return tuple(fresh[:3])


def _safety_data(safety: DuloxetineSafety) -> tuple[Datum, ...]:
    """The chart data behind the duloxetine check, for the card's data line."""
    items: list[MedicationUse | Measurement | Record] = [
        *safety.contraindicated_by, *safety.serotonergic, *safety.bleeding,
        *safety.hepatic, *safety.alcohol, *safety.glaucoma,
    ]
    if safety.low_kidney_function is not None:
        items.append(safety.low_kidney_function)
    return data_of(items)


def duloxetine(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    rules = knowledge.rules.duloxetine
    if facts.current("duloxetine") or not facts.knows(DataSource.MEDICATIONS):
        return None
    latest, phq9 = facts.latest_pain, (facts.phq9[-1] if facts.phq9 else None)
    params: Params = {**state(facts)}
    evidence: list[Datum] = []
    if latest and latest.value >= rules.min_pain:
        evidence.append(pain_datum(latest))
    else:
        params.pop("pain", None)
    if neuropathic := neuropathic_features(facts, knowledge):
        params["neuropathic"] = names(neuropathic)
    if depression := facts.has("depression"):
        params["depression"] = names(depression)
    if phq9 and phq9.value >= rules.min_phq9:
        params |= {"phq9": phq9.value, "phq9_date": phq9.when}
        evidence.append(Datum("PHQ-9", f"{phq9.value:g}", phq9.when))
    evidence += data_of((*neuropathic, *depression))
    if not evidence:
        return None
    safety = duloxetine_safety(facts, knowledge)
    params |= safety.params()
    evidence += _safety_data(safety)
    if tamoxifen := facts.current("tamoxifen"):
        params["tamoxifen"] = names(tamoxifen)
        evidence += data_of(tamoxifen)
    blocked = not safety.allowed
    cautioned = len(safety.params()) > 0
    return Finding(
        topic="duloxetine",
        indicator="warning" if blocked or cautioned else symptom_urgency(facts, knowledge),
        evidence=(*ai_data(facts), *evidence),
        params=params,
        orders=() if blocked else (Order(("duloxetine-30mg",), recommended=True),),
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
    params: Params = {**state(facts)}
    if analgesics:
        params["analgesics"] = names(analgesics)
    return Finding(
        topic="analgesic-expectations",
        indicator=symptom_urgency(facts, knowledge),
        evidence=(*ai_data(facts), *((pain_datum(mild),) if mild else ()), *data_of(analgesics)),
        params=params,
    )


def hand_wrist(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    found = facts.has("hand-wrist-syndromes") + facts.has("hand-wrist-symptoms")
    if not found:
        return None
    return Finding(
        topic="hand-wrist",
        indicator=symptom_urgency(facts, knowledge),
        evidence=(*ai_data(facts), *data_of(found)),
        params={**state(facts), "hand": names(found)},
        orders=(Order(("hand-therapy-referral",), recommended=True),),
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
        and not any(t.when >= months_before(start, rules.baseline_window_months)
                    for t in facts.bone_density_tests)
    )
    if last is not None and last.when >= months_before(facts.today, interval) and not baseline_missing:
        return None
    params: Params = {**state(facts), "dxa_interval": interval}
    if last is not None:
        params |= {"dxa_date": last.when, "dxa_months": whole_months_between(last.when, facts.today)}
        if baseline_missing:
            params["baseline_window"] = rules.baseline_window_months
    return Finding(
        topic="bone-density-scan",
        indicator="info",
        evidence=(*ai_data(facts), *data_of([last] if last else [])),
        params=params,
        orders=(Order(("dxa-scan",), recommended=True),),
    )


_GUIDELINES = {"hadji-2017": "Hadji 2017, for women on an AI", "asco-2019": "ASCO 2019"}


def bone_protection(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    if not facts.knows(DataSource.MEDICATIONS, DataSource.BONE_DENSITY, DataSource.CONDITIONS):
        return None
    rules = knowledge.rules.bone_protection
    params: Params = {**state(facts)}
    evidence: list[Datum] = []
    lowest = _lowest_latest_t_score(facts)
    if lowest and lowest.t_score is not None and lowest.t_score <= rules.max_t_score:
        params |= {"t_score": lowest.t_score, "t_score_site": dxa_site(lowest),
                   "t_score_date": lowest.when, "t_threshold": f"{rules.max_t_score:.1f}"}
        evidence += data_of([lowest])
    falls = _falls_into_osteopenia(facts, rules.osteopenia_t_score, rules.min_t_score_fall)
    if falls:
        params["t_fall"] = tuple(
            f"from {a.t_score:g} ({a.when.isoformat()}) to {b.t_score:g} ({b.when.isoformat()}) at the {dxa_site(b)}"
            for a, b in falls
        )
        params["t_fall_to"] = min(b.t_score or 0.0 for _, b in falls)
        evidence += data_of([t for pair in falls for t in pair])
    if osteoporosis := facts.has("osteoporosis"):
        params["osteoporosis"] = names(osteoporosis)
        evidence += data_of(osteoporosis)
    if fractures := [r for group in rules.fracture_sets for r in facts.has(group)]:
        params["fracture"] = names(fractures)
        evidence += data_of(fractures)
    indicated = bool(evidence)
    on_agent = other_bone_agents(facts)
    needs_agent = indicated and not on_agent
    needs_supplements = not facts.current("calcium-vitamin-d")
    lapse = lapsed_denosumab(facts, rules.denosumab_interval_months)
    if not needs_agent and not needs_supplements and lapse is None:
        return None
    orders, notes = [], []
    if indicated:
        params["t_guideline"] = _GUIDELINES[rules.t_score_guideline]
        if rules.t_score_guideline == "asco-2019":
            notes.append("frax")
    if indicated and on_agent:
        params["bone_agent"] = names(on_agent)
    if lapse is not None:
        params["denosumab"] = "stopped" if lapse.stopped else "overdue"
        if lapse.last_dose is not None:
            params["denosumab_last"] = lapse.last_dose
        evidence += data_of(facts.ever("denosumab"))
    if needs_agent:
        check = agent_check(facts, rules.agent_min_kidney_function, rules.agent_contraindication_sets,
                            knowledge.rules.contributing_factors.min_vitamin_d_ng_ml)
        params |= check.params
        notes += ["agent", *check.notes]
        if check.allowed and lapse is None:
            orders.append(Order((rules.agent_activity,), recommended=True))
    if needs_supplements:
        orders.append(Order(("calcium-supplement", "vitamin-d-supplement"), recommended=not orders))
        notes.append("supplements")
    return Finding(
        topic="bone-protection",
        indicator="warning" if needs_agent or lapse else "info",
        evidence=(*ai_data(facts), *_unique(evidence)),
        params=params,
        notes=tuple(notes),
        orders=tuple(orders),
    )


def _unique(data: Iterable[Datum]) -> tuple[Datum, ...]:
    return tuple(dict.fromkeys(data))


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
    by at least ``min_fall`` (a fall within the normal range does not count)."""
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
    checks = (  # (results, order, is the latest result abnormal?)
        (facts.tsh, "tsh-test", lambda m: m.abnormal is True),
        (facts.vitamin_d, "vitamin-d-test", lambda m: m.value < rules.min_vitamin_d_ng_ml),
        (facts.phq9, "phq9-screen", lambda m: m.value >= rules.min_phq9),
    )
    missing: list[str] = []
    abnormal: list[Datum] = []
    activities: list[str] = []
    for results, activity, is_abnormal in checks:
        recent = [m for m in results if m.when >= since]
        name = knowledge.wording.activities[activity].name
        if not recent:
            missing.append(name)
        elif is_abnormal(recent[-1]):
            abnormal.append(Datum(name, f"{recent[-1].value:g}", recent[-1].when))
        else:
            continue
        activities.append(activity)
    if not activities:
        return None
    params: Params = {**state(facts), "lab_months": rules.lab_within_months}
    if missing:
        params["missing"] = tuple(missing)
    if abnormal:
        params["abnormal"] = tuple(f"{d.what} {d.value} ({d.when})" for d in abnormal)
    return Finding(
        topic="contributing-factors",
        indicator=symptom_urgency(facts, knowledge),
        evidence=(*ai_data(facts), *_shown_data(shown), *abnormal),
        params=params,
        orders=tuple(Order((a,), recommended=i == 0) for i, a in enumerate(activities)),
    )


def switch_therapy(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    rules = knowledge.rules.switch_therapy
    params: Params = {**state(facts)}
    evidence: list[Datum] = []
    high = [m for m in facts.pain_scores if m.value >= rules.min_pain]
    if high and facts.latest_pain is high[-1] and high[-1].when - high[0].when >= timedelta(weeks=rules.min_weeks_apart):
        settled = high[-1].when - timedelta(weeks=rules.min_weeks_in_place)
        timed = [item for item in _interventions_in_place(facts)
                 if (since := _started(item)) is not None and since <= min(high[0].when, settled)]
        if len(timed) >= rules.min_interventions:
            params |= {"first_pain": score(high[0]), "first_pain_date": high[0].when, "treatments": names(timed)}
            evidence += [pain_datum(high[0]), pain_datum(high[-1]), *data_of(timed)]
    stopped = [m for m in facts.ever(AROMATASE_INHIBITORS) if m.status in ("stopped", "completed")
               and _stopped_for_symptoms(m, rules.stop_reason_words)]
    if stopped:
        params["stopped_for"] = tuple(f"{ingredient(m)} ({m.status_reason or 'coded symptom'})" for m in stopped)
        evidence += [Datum(drug(m), "stopped", m.end) for m in stopped]
    if not evidence:
        return None
    tried = {i for m in facts.ever(AROMATASE_INHIBITORS) for i in m.groups if i in AI_INGREDIENTS}
    failed = sorted({i for m in stopped for i in m.groups if i in tried})
    if len(failed) >= 2:
        params["ais_failed"] = tuple(failed)
    if metastatic := [r for group in rules.metastatic_sets for r in facts.has(group)]:
        params["metastatic"] = names(metastatic)
        evidence += data_of(metastatic)
    return Finding(
        topic="switch-therapy",
        indicator="warning",
        evidence=(*ai_data(facts), *evidence),
        params=params,
    )


def _stopped_for_symptoms(use: MedicationUse, words: tuple[str, ...]) -> bool:
    if use.status_reason_groups & {"aimss-symptoms", "hand-wrist-syndromes", "neuropathic-features"}:
        return True
    text = (use.status_reason or "").lower()
    return any(word.lower() in text for word in words)


def _started(item: MedicationUse | Record) -> date | None:
    return item.start if isinstance(item, MedicationUse) else item.when


def _interventions_in_place(facts: PatientFacts) -> list[MedicationUse | Record]:
    records: list[MedicationUse | Record] = [r for s in INTERVENTION_SETS for r in facts.has(s)]
    drugs = [m for g in ("duloxetine", *ANALGESICS, "neuropathic-analgesics") for m in facts.current(g)]
    return records + drugs


def red_flags(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    rules = knowledge.rules.red_flags
    params: Params = {**state(facts)}
    evidence: list[Datum] = []
    if found := [r for group in rules.condition_sets for r in facts.has(group)]:
        params["flags"] = names(found)
        evidence += data_of(found)
    if facts.knows(DataSource.INTERVENTIONS, DataSource.MEDICATIONS) and (
        worsening := _worsening_on_treatment(facts, rules.min_pain_rise)
    ):
        treatment, low, last = worsening
        params |= {"first_pain": score(low), "first_pain_date": low.when, "treatments": names([treatment])}
        evidence += [pain_datum(low), pain_datum(last), *data_of([treatment])]
    if not evidence:
        return None
    return Finding(
        topic="red-flags",
        indicator="warning",
        evidence=(*ai_data(facts), *evidence),
        params=params,
    )


def _worsening_on_treatment(
    facts: PatientFacts, rise: float
) -> tuple[MedicationUse | Record, Measurement, Measurement] | None:
    """A rise of ``rise`` or more from a reading taken on a treatment (on or after its start) to
    the latest reading: the treatment preceded the rise. A treatment without a start date cannot
    be timed and does not count."""
    last = facts.latest_pain
    if last is None:
        return None
    for treatment in _interventions_in_place(facts):
        if (since := _started(treatment)) is None:
            continue
        on_it = [m for m in facts.pain_scores if m.when >= since and m is not last]
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
    params: Params = {**state(facts), "ai_paused": f"{ingredient(paused[0])} {paused[0].status.replace('-', ' ')}"}
    if reasons := tuple(m.status_reason for m in paused if m.status_reason):
        params["stopped_for"] = reasons
    safety = duloxetine_safety(facts, knowledge)
    options = ["exercise", "acupuncture"]
    if safety.allowed and not facts.current("duloxetine"):
        options.append("duloxetine")
    params |= {"options": tuple(options), **safety.params()}
    return Finding(
        topic="adherence",
        indicator="warning",
        evidence=(*(Datum(drug(m), m.status.replace("-", " "), m.start) for m in paused), *_shown_data(shown),
                  *_safety_data(safety)),
        params=params,
    )


def data_incomplete(facts: PatientFacts) -> Finding:
    return Finding(
        topic="data-incomplete",
        indicator="warning",
        params={"unavailable": tuple(sorted(facts.unavailable))},
    )


PATIENT_VIEW_RULES: tuple[Rule, ...] = (
    symptom_assessment, exercise, multimodal_management, duloxetine, analgesic_expectations,
    hand_wrist, bone_density_scan, bone_protection, contributing_factors, switch_therapy,
    red_flags, adherence,
)
