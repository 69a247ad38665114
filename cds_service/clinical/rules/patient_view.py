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
from cds_service.clinical.findings import Datum, Finding, Indicator, Order
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


_SEMANTIC_TAG = re.compile(r"\s*\((disorder|finding|procedure|regime/therapy|situation|observable entity)\)$")


def plain(name: str) -> str:
    """A coded display without SNOMED's semantic tag: "Trigger finger", not "... (disorder)"."""
    return _SEMANTIC_TAG.sub("", name)


def drug(use: MedicationUse) -> str:
    """A drug as a card names it: the name before its strength ("tramadol hydrochloride")."""
    return re.split(r"\s+\d", use.name, maxsplit=1)[0] or use.name


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


def names(items: Iterable[MedicationUse | Record]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(drug(i) if isinstance(i, MedicationUse) else plain(i.name) for i in items))


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
    duloxetine_ok = not facts.current("duloxetine") and not facts.current("maois-linezolid")
    kinds = ["exercise-program", "physical-therapy", "duloxetine" if duloxetine_ok else "acupuncture"]
    orders = {"duloxetine": "duloxetine-30mg", **INTERVENTION_ORDERS}
    together = tuple(orders[kind] for kind in kinds if kind == "duloxetine" or not facts.has(kind))
    return Finding(
        topic="multimodal-management",
        indicator="warning",
        evidence=(*ai_data(facts), Datum("BPI interference", interference(latest), latest.when)),
        params={**state(facts), "bpi_threshold": threshold},
        orders=(Order(together, recommended=True),) if len(together) >= 2 else (),
    )


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
    if neuropathic := facts.has("neuropathic-features"):
        params["neuropathic"] = names(neuropathic)
    if depression := facts.has("depression"):
        params["depression"] = names(depression)
    if phq9 and phq9.value >= rules.min_phq9:
        params |= {"phq9": phq9.value, "phq9_date": phq9.when}
        evidence.append(Datum("PHQ-9", f"{phq9.value:g}", phq9.when))
    evidence += data_of((*neuropathic, *depression))
    if not evidence:
        return None
    blocked = facts.current("maois-linezolid")
    for key, drugs in (("contraindicated", blocked), ("serotonergic", facts.current("serotonergic-drugs")),
                       ("tamoxifen", facts.current("tamoxifen"))):
        if drugs:
            params[key] = names(drugs)
            evidence += data_of(drugs)
    return Finding(
        topic="duloxetine",
        indicator="warning" if blocked else symptom_urgency(facts, knowledge),
        evidence=(*ai_data(facts), *evidence),
        params=params,
        orders=() if blocked else (Order(("duloxetine-30mg",), recommended=True),),
    )


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
        and not any(abs(whole_months_between(min(t.when, start), max(t.when, start)))
                    <= rules.baseline_window_months for t in facts.bone_density_tests)
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


def bone_protection(facts: PatientFacts, knowledge: Knowledge) -> Finding | None:
    if not facts.knows(DataSource.MEDICATIONS, DataSource.BONE_DENSITY, DataSource.CONDITIONS):
        return None
    rules = knowledge.rules.bone_protection
    params: Params = {**state(facts)}
    evidence: list[Datum] = []
    lowest = _lowest_latest_t_score(facts)
    if lowest and lowest.t_score is not None and lowest.t_score <= rules.max_t_score:
        params |= {"t_score": lowest.t_score, "t_score_site": dxa_site(lowest),
                   "t_score_date": lowest.when, "t_threshold": rules.max_t_score}
        evidence += data_of([lowest])
    falls = _t_score_falls(facts, rules.min_t_score_fall)
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
    needs_agent = bool(evidence) and not facts.current("bone-modifying-agents")
    needs_supplements = not facts.current("calcium-vitamin-d")
    if not needs_agent and not needs_supplements:
        return None
    orders, notes = [], []
    if needs_agent:
        orders.append(Order(("bisphosphonate",), recommended=True))
        notes.append("agent")
    if needs_supplements:
        orders.append(Order(("calcium-supplement", "vitamin-d-supplement"), recommended=not needs_agent))
        notes.append("supplements")
    return Finding(
        topic="bone-protection",
        indicator="warning" if needs_agent else "info",
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
    interventions = _interventions_in_place(facts)
    if (high and facts.latest_pain is high[-1] and high[-1].when - high[0].when >= timedelta(weeks=rules.min_weeks_apart)
            and len(interventions) >= rules.min_interventions):
        params |= {"first_pain": score(high[0]), "first_pain_date": high[0].when, "treatments": names(interventions)}
        evidence += [pain_datum(high[0]), pain_datum(high[-1]), *data_of(interventions)]
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


def _interventions_in_place(facts: PatientFacts) -> list[MedicationUse | Record]:
    records: list[MedicationUse | Record] = [r for s in INTERVENTION_SETS for r in facts.has(s)]
    drugs = [m for g in ("duloxetine", *ANALGESICS, "neuropathic-analgesics") for m in facts.current(g)]
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
        evidence=(*ai_data(facts), pain_datum(first), pain_datum(last), *data_of(treatments)),
        params={**state(facts), "first_pain": score(first), "first_pain_date": first.when,
                "treatments": names(treatments)},
    )


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
    return Finding(
        topic="adherence",
        indicator="warning",
        evidence=(*(Datum(drug(m), m.status.replace("-", " "), m.start) for m in paused), *_shown_data(shown)),
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
