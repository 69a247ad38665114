"""Pure extraction of the facts the rules read from a patient's FHIR resources.

Missing data is unknown, not "no": ``PatientFacts.unavailable`` names every data source that
could not be read, and the rules consult it before concluding that something is absent.
Real-world variety is tolerated: MedicationStatement or MedicationRequest, inline, contained
or referenced Medications, numbers as valueQuantity/valueInteger/valueCodeableConcept, dates
as dateTime or Period, BPI interference recorded or computed from a QuestionnaireResponse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from cds_service.clinical.dates import months_before
from cds_service.fhir.resources import Resource, codings, concept_text, first_date, reference_key
from cds_service.knowledge.loader import CodeMatch, Knowledge

# Data sources, named as a clinician would read them on a "data incomplete" card.
MEDICATIONS = "medications"
BONE_DENSITY = "bone density tests"
PAIN = "pain and BPI scores"
CONDITIONS = "conditions"
LABS = "TSH, vitamin D and PHQ-9 results"
INTERVENTIONS = "referrals and procedures"

AROMATASE_INHIBITORS = "aromatase-inhibitors"
AI_INGREDIENTS = ("anastrozole", "letrozole", "exemestane")
INTERVENTION_SETS = ("physical-therapy", "acupuncture", "exercise-program")
BPI_QUESTIONNAIRE = "http://aimss-cds.example.org/fhir/Questionnaire/bpi-short-form"
BPI_INTERFERENCE_ITEMS = (
    "interference-general-activity", "interference-mood", "interference-walking",
    "interference-work", "interference-relations", "interference-sleep",
    "interference-enjoyment",
)
BPI_PAIN_ITEMS = ("severity-average", "severity-worst")

_STATEMENT_STATUS = {
    "active": "active", "intended": "active", "on-hold": "on-hold", "stopped": "stopped",
    "completed": "completed", "not-taken": "not-taken", "unknown": "unknown",
}
_REQUEST_STATUS = {
    "active": "active", "on-hold": "on-hold", "stopped": "stopped", "cancelled": "stopped",
    "completed": "completed", "unknown": "unknown",
}
_NOT_A_USE_INTENT = {"proposal", "option", "directive"}
_VOID = {"entered-in-error", "cancelled", "registered", "revoked", "not-done"}
_INACTIVE_CONDITION = {"inactive", "remission", "resolved"}
_ABNORMAL_FLAGS = {"H", "HH", "HU", "L", "LL", "LU", "A", "AA"}
_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


@dataclass(frozen=True)
class MedicationUse:
    """One record of a drug of interest, from a MedicationStatement or a MedicationRequest."""

    groups: frozenset[str]
    name: str
    status: str
    start: date | None
    end: date | None
    source: str
    unverified_codes: tuple[str, ...]
    status_reason: str | None = None
    status_reason_groups: frozenset[str] = frozenset()

    @property
    def is_current(self) -> bool:
        return self.status == "active"

    def belongs_to(self, group: str) -> bool:
        return group in self.groups


@dataclass(frozen=True)
class Measurement:
    """A dated number: a pain score, a BPI interference score, a lab or a T-score."""

    when: date
    value: float
    name: str
    source: str
    unverified_codes: tuple[str, ...] = ()
    abnormal: bool | None = None
    code: str = ""

    def describe(self) -> str:
        return f"{self.name} {self.value:g} on {self.when.isoformat()} ({self.source})"


@dataclass(frozen=True)
class BoneDensityTest:
    """A DXA: a result Observation, a DiagnosticReport or a Procedure."""

    when: date
    source: str
    name: str
    t_score: float | None
    unverified_codes: tuple[str, ...]
    site: str = ""


@dataclass(frozen=True)
class Record:
    """A coded condition, or an intervention (referral or procedure), found in the record."""

    groups: frozenset[str]
    name: str
    when: date | None
    source: str
    unverified_codes: tuple[str, ...]

    def describe(self) -> str:
        when = f" ({self.when.isoformat()})" if self.when else ""
        return f"{self.name}{when}, {self.source}"


@dataclass(frozen=True)
class PatientFacts:
    today: date
    unavailable: frozenset[str]
    medications: tuple[MedicationUse, ...]
    bone_density_tests: tuple[BoneDensityTest, ...]
    pain_scores: tuple[Measurement, ...] = ()
    bpi_interference: tuple[Measurement, ...] = ()
    phq9: tuple[Measurement, ...] = ()
    tsh: tuple[Measurement, ...] = ()
    vitamin_d: tuple[Measurement, ...] = ()
    conditions: tuple[Record, ...] = ()
    interventions: tuple[Record, ...] = ()

    def knows(self, *sources: str) -> bool:
        return not self.unavailable.intersection(sources)

    def current(self, group: str) -> tuple[MedicationUse, ...]:
        return tuple(m for m in self.medications if m.is_current and m.belongs_to(group))

    def ever(self, group: str) -> tuple[MedicationUse, ...]:
        return tuple(m for m in self.medications if m.belongs_to(group))

    def stopped_within(self, group: str, days: int) -> tuple[MedicationUse, ...]:
        """Not current, with an end date in the last ``days`` days (both ends counted): a washout
        window read from end dates. A use with no end date cannot be placed and is not counted."""
        return tuple(
            m for m in self.medications
            if not m.is_current and m.belongs_to(group) and m.end is not None
            and 0 <= (self.today - m.end).days <= days
        )

    def has(self, group: str) -> tuple[Record, ...]:
        """Active conditions and interventions in a value set."""
        return tuple(f for f in (*self.conditions, *self.interventions) if group in f.groups)

    @property
    def current_aromatase_inhibitors(self) -> tuple[MedicationUse, ...]:
        return self.current(AROMATASE_INHIBITORS)

    @property
    def ai_start(self) -> date | None:
        starts = [m.start for m in self.current_aromatase_inhibitors if m.start]
        return min(starts, default=None)

    @property
    def last_bone_density_test(self) -> BoneDensityTest | None:
        return max(self.bone_density_tests, key=lambda test: test.when, default=None)

    @property
    def latest_pain(self) -> Measurement | None:
        return self.pain_scores[-1] if self.pain_scores else None

    @property
    def latest_bpi_interference(self) -> Measurement | None:
        return self.bpi_interference[-1] if self.bpi_interference else None


def extract_facts(
    resources: Iterable[Resource],
    knowledge: Knowledge,
    today: date,
    unavailable: Iterable[str] = (),
) -> PatientFacts:
    by_type: dict[str, list[Resource]] = {}
    for resource in _unique(resources):
        by_type.setdefault(resource.get("resourceType", ""), []).append(resource)
    since = months_before(today, knowledge.rules.facts.lookback_months)
    observations = _observations_by_valueset(by_type.get("Observation", []), knowledge)
    medications_by_reference = {
        key: med for med in by_type.get("Medication", []) if (key := reference_key(med))
    }
    medications = tuple(
        use
        for resource in (*by_type.get("MedicationStatement", []), *by_type.get("MedicationRequest", []))
        if (use := _medication_use(resource, knowledge, medications_by_reference)) is not None
    )
    bpi_scores, bpi_pain = _bpi_from_questionnaires(
        by_type.get("QuestionnaireResponse", []), knowledge.rules.facts.bpi_min_items_answered
    )

    def measured(valueset: str) -> Iterator[Measurement]:
        return _measurements(observations.get(valueset, []), valueset)

    return PatientFacts(
        today=today,
        unavailable=frozenset(unavailable),
        medications=medications,
        bone_density_tests=tuple(
            _bone_density_tests(by_type, observations.get("dxa-results", []), knowledge)
        ),
        pain_scores=_recent([*measured("pain-severity"), *bpi_pain], since),
        bpi_interference=_recent([*measured("bpi-interference"), *bpi_scores], since),
        phq9=_recent(measured("phq9"), since),
        tsh=_recent(measured("tsh"), since),
        vitamin_d=_recent(
            _vitamin_d(measured("vitamin-d-25oh"), observations.get("vitamin-d-25oh", [])), since
        ),
        conditions=tuple(_conditions(by_type.get("Condition", []), knowledge)),
        interventions=tuple(_interventions(by_type, knowledge, since)),
    )


Coded = tuple[Resource, tuple[CodeMatch, ...]]
"""A resource with every value-set membership of its code."""


def _observations_by_valueset(
    observations: Iterable[Resource], knowledge: Knowledge
) -> dict[str, list[Coded]]:
    """Each valid Observation under every value set its code is in, its code matched once.

    A chart holds a year of scores and labs; matching every Observation once, rather than once
    per fact, is most of what keeps a hook call within its latency target.
    """
    index: dict[str, list[Coded]] = {}
    for observation in observations:
        if observation.get("status") in _VOID:
            continue
        matches = knowledge.matches(codings(observation.get("code")))
        for valueset in {m.valueset for m in matches}:
            index.setdefault(valueset, []).append((observation, matches))
    return index


def _unique(resources: Iterable[Resource]) -> Iterator[Resource]:
    """The same resource may arrive under two prefetch keys; count it once."""
    seen: set[str] = set()
    for resource in resources:
        key = reference_key(resource)
        if key is None or key not in seen:
            if key:
                seen.add(key)
            yield resource


def _recent(measurements: Iterable[Measurement], since: date) -> tuple[Measurement, ...]:
    """Measurements in the lookback window, oldest first."""
    return tuple(sorted((m for m in measurements if m.when >= since), key=lambda m: m.when))


def _medication_use(
    resource: Resource, knowledge: Knowledge, medications: Mapping[str, Resource]
) -> MedicationUse | None:
    kind = resource.get("resourceType")
    if kind == "MedicationStatement":
        status = _STATEMENT_STATUS.get(resource.get("status", ""))
        start = first_date(resource, "effectivePeriod.start", "effectiveDateTime", "dateAsserted")
        end = first_date(resource, "effectivePeriod.end")
        reasons = resource.get("statusReason") or []
    else:
        if resource.get("intent") in _NOT_A_USE_INTENT:
            return None
        status = _REQUEST_STATUS.get(resource.get("status", ""))
        start = first_date(resource, "authoredOn")
        validity = (resource.get("dispenseRequest") or {}).get("validityPeriod")
        end = first_date({"v": validity}, "v.end") if isinstance(validity, Mapping) else None
        reasons = [resource["statusReason"]] if isinstance(resource.get("statusReason"), Mapping) else []
    if status is None:
        return None
    concept, name = _medication_concept(resource, medications)
    matches = knowledge.matches(codings(concept))
    if not matches:
        return None
    reason_texts = [t for r in reasons if (t := concept_text(r))]
    reason_matches = knowledge.matches(c for r in reasons for c in codings(r))
    return MedicationUse(
        groups=frozenset(m.valueset for m in matches),
        name=name or matches[0].display,
        status=status,
        start=start,
        end=end,
        source=reference_key(resource) or str(kind),
        unverified_codes=_unverified(matches),
        status_reason="; ".join(reason_texts) or None,
        status_reason_groups=frozenset(m.valueset for m in reason_matches),
    )


def _medication_concept(
    resource: Resource, medications: Mapping[str, Resource]
) -> tuple[dict[str, Any], str | None]:
    """The drug's codings: inline, or from a contained or referenced Medication (with ingredients)."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, Mapping):
        return dict(concept), concept_text(concept)
    reference = (resource.get("medicationReference") or {}).get("reference", "")
    medication: Resource | None = None
    if isinstance(reference, str) and reference.startswith("#"):
        medication = next(
            (c for c in resource.get("contained", []) if c.get("id") == reference[1:]), None
        )
    elif isinstance(reference, str):
        medication = medications.get(reference)
    if medication is None:
        return {}, None
    all_codings = list(codings(medication.get("code")))
    for ingredient in medication.get("ingredient", []):
        all_codings += codings(ingredient.get("itemCodeableConcept"))
    return {"coding": all_codings}, concept_text(medication.get("code"))


def numeric_value(resource: Resource) -> float | None:
    """valueQuantity, valueInteger, valueDecimal, or a numeric valueCodeableConcept/valueString."""
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, Mapping) and isinstance(quantity.get("value"), int | float):
        return float(quantity["value"])
    for name in ("valueInteger", "valueDecimal"):
        if isinstance(resource.get(name), int | float) and not isinstance(resource.get(name), bool):
            return float(resource[name])
    candidates = [resource.get("valueString")]
    concept = resource.get("valueCodeableConcept")
    if isinstance(concept, Mapping):
        candidates += [concept.get("text"), *(c.get("code") for c in codings(concept))]
    for candidate in candidates:
        if isinstance(candidate, str) and _NUMBER.match(candidate):
            return float(candidate)
    return None


def _observation_date(observation: Resource) -> date | None:
    return first_date(observation, "effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued")


def _measurements(observations: Iterable[Coded], valueset: str) -> Iterator[Measurement]:
    """The dated numbers of Observations coded in ``valueset``."""
    for observation, all_matches in observations:
        matches = [m for m in all_matches if m.valueset == valueset]
        when, value = _observation_date(observation), numeric_value(observation)
        if when is None or value is None:
            continue
        yield Measurement(
            when, value, concept_text(observation.get("code")) or matches[0].display,
            reference_key(observation) or "Observation", _unverified(matches),
            _abnormal(observation, value), matches[0].code,
        )


def _abnormal(observation: Resource, value: float) -> bool | None:
    """From the lab's own interpretation or reference range; ``None`` when it gives neither."""
    for interpretation in observation.get("interpretation") or []:
        for coding in codings(interpretation):
            if coding.get("code") in _ABNORMAL_FLAGS:
                return True
            if coding.get("code") == "N":
                return False
    for reference_range in observation.get("referenceRange") or []:
        low = (reference_range.get("low") or {}).get("value")
        high = (reference_range.get("high") or {}).get("value")
        if isinstance(low, int | float) or isinstance(high, int | float):
            return (isinstance(low, int | float) and value < low) or (
                isinstance(high, int | float) and value > high
            )
    return None


def _vitamin_d(
    measurements: Iterable[Measurement], observations: Iterable[Coded]
) -> Iterator[Measurement]:
    """25-OH vitamin D in ng/mL; results in nmol/L are divided by 2.496, unknown units dropped."""
    by_source = {reference_key(o): o for o, _ in observations}
    for measurement in measurements:
        observation = by_source.get(measurement.source, {})
        quantity = observation.get("valueQuantity") or {}
        unit = str(quantity.get("code") or quantity.get("unit") or "").lower()
        if "nmol" in unit:
            value = round(measurement.value / 2.496, 1)
        elif "ng" in unit or "ug/l" in unit or "µg/l" in unit:
            value = measurement.value
        else:
            continue
        yield Measurement(
            measurement.when, value, measurement.name, measurement.source,
            measurement.unverified_codes, measurement.abnormal, measurement.code,
        )


def _bpi_from_questionnaires(
    responses: Iterable[Resource], min_items: int
) -> tuple[list[Measurement], list[Measurement]]:
    """BPI interference (mean of the 7 items, if enough answered) and pain, per BPI response."""
    interference: list[Measurement] = []
    pain: list[Measurement] = []
    for response in responses:
        if response.get("status") not in ("completed", "amended"):
            continue
        answers = dict(_answers(response.get("item") or []))
        has_bpi_items = any(link in answers for link in BPI_INTERFERENCE_ITEMS)
        if str(response.get("questionnaire", "")).split("|")[0] != BPI_QUESTIONNAIRE and not has_bpi_items:
            continue
        when = first_date(response, "authored")
        if when is None:
            continue
        source = reference_key(response) or "QuestionnaireResponse"
        scored = [answers[link] for link in BPI_INTERFERENCE_ITEMS if link in answers]
        if len(scored) >= min_items:
            mean = round(sum(scored) / len(scored), 2)
            name = f"BPI interference (mean of {len(scored)} of 7 items)"
            interference.append(Measurement(when, mean, name, source))
        for link in BPI_PAIN_ITEMS:
            if link in answers:
                pain.append(Measurement(when, answers[link], f"BPI {link.split('-')[1]} pain", source))
                break
    return interference, pain


def _answers(items: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, float]]:
    for item in items:
        for answer in item.get("answer") or []:
            value = numeric_value(answer)
            coding = answer.get("valueCoding") or {}
            if value is None and isinstance(coding.get("code"), str) and _NUMBER.match(coding["code"]):
                value = float(coding["code"])
            if value is not None and 0 <= value <= 10:
                yield str(item.get("linkId")), value
                break
        yield from _answers(item.get("item") or [])


def _bone_density_tests(
    by_type: Mapping[str, list[Resource]], dxa_results: Iterable[Coded], knowledge: Knowledge
) -> Iterator[BoneDensityTest]:
    for observation, matches in dxa_results:
        when = _observation_date(observation)
        if when is None:
            continue
        t_score = numeric_value(observation) if any(m.valueset == "dxa-t-scores" for m in matches) else None
        yield BoneDensityTest(
            when, reference_key(observation) or "Observation",
            concept_text(observation.get("code")) or matches[0].display, t_score,
            _unverified(matches), matches[0].code,
        )
    for kind, date_fields, valid in (
        ("Procedure", ("performedDateTime", "performedPeriod.start"), {"completed"}),
        ("DiagnosticReport", ("effectiveDateTime", "effectivePeriod.start", "issued"),
         {"final", "amended", "corrected", "appended", "preliminary", "partial"}),
    ):
        for resource in by_type.get(kind, []):
            if resource.get("status") not in valid:
                continue
            matches = knowledge.matches(codings(resource.get("code")))
            if not any(m.valueset in ("dxa-procedures", "dxa-results") for m in matches):
                continue
            when = first_date(resource, *date_fields)
            if when is not None:
                yield BoneDensityTest(
                    when, reference_key(resource) or kind,
                    concept_text(resource.get("code")) or matches[0].display, None,
                    _unverified(matches),
                )


def _conditions(conditions: Iterable[Resource], knowledge: Knowledge) -> Iterator[Record]:
    for condition in conditions:
        clinical = {c.get("code") for c in codings(condition.get("clinicalStatus"))}
        verification = {c.get("code") for c in codings(condition.get("verificationStatus"))}
        if clinical & _INACTIVE_CONDITION or verification & {"refuted", "entered-in-error"}:
            continue
        matches = knowledge.matches(codings(condition.get("code")))
        if not matches:
            continue
        yield Record(
            frozenset(m.valueset for m in matches),
            concept_text(condition.get("code")) or matches[0].display,
            first_date(condition, "onsetDateTime", "onsetPeriod.start", "recordedDate"),
            reference_key(condition) or "Condition",
            _unverified(matches),
        )


def _interventions(
    by_type: Mapping[str, list[Resource]], knowledge: Knowledge, since: date
) -> Iterator[Record]:
    for kind, date_fields, valid in (
        ("ServiceRequest", ("occurrenceDateTime", "occurrencePeriod.start", "authoredOn"),
         {"active", "completed", "on-hold"}),
        ("Procedure", ("performedDateTime", "performedPeriod.start"), {"completed", "in-progress"}),
    ):
        for resource in by_type.get(kind, []):
            if resource.get("status") not in valid:
                continue
            matches = [
                m for m in knowledge.matches(codings(resource.get("code"))) if m.valueset in INTERVENTION_SETS
            ]
            when = first_date(resource, *date_fields)
            if not matches or (when is not None and when < since):
                continue
            yield Record(
                frozenset(m.valueset for m in matches),
                concept_text(resource.get("code")) or matches[0].display,
                when, reference_key(resource) or kind, _unverified(matches),
            )


def _unverified(matches: Iterable[CodeMatch]) -> tuple[str, ...]:
    return tuple(sorted({f"{m.code} ({m.display})" for m in matches if not m.verified}))


@dataclass(frozen=True)
class DraftedOrder:
    """A draft order whose drug is in one of the value sets."""

    resource_id: str
    name: str
    groups: frozenset[str]
    unverified_codes: tuple[str, ...]
    drug: tuple[str, ...] = ()

    @property
    def identity(self) -> str:
        """The draft as the same draft across hook calls: its reference and its drug. The public
        sandbox gives every draft the id ``request-123``, so the id alone would not tell a
        raloxifene draft from the estradiol that replaced it."""
        return f"{self.resource_id}|{','.join(self.drug)}"


def drafted_orders(
    entries: Iterable[Mapping[str, Any]], selections: Iterable[str] | None, knowledge: Knowledge
) -> tuple[DraftedOrder, ...]:
    """The drafts with a drug we know: those in ``selections`` (order-select), or every draft
    when there are none to select from (order-sign signs them all)."""
    selected = None if selections is None else set(selections)
    drafts = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            continue
        if selected is not None and reference_key(resource) not in selected:
            continue
        concept = resource.get("medicationCodeableConcept")
        matches = knowledge.matches(codings(concept))
        if matches:
            drafts.append(DraftedOrder(
                str(reference_key(resource)), concept_text(concept) or matches[0].display,
                frozenset(m.valueset for m in matches), _unverified(matches),
                tuple(sorted({f"{m.system}|{m.code}" for m in matches})),
            ))
    return tuple(drafts)
