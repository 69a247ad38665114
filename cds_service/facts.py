"""Pure extraction of the facts the rules read from a patient's FHIR resources.

Missing data is unknown, not "no": ``PatientFacts.unavailable`` names every data source that
could not be read, and the rules consult it before concluding that something is absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from .fhirdata import Resource, codings, concept_text, first_date, reference_key
from .knowledge import CodeMatch, Knowledge

# Data sources, named as a clinician would read them on a "data incomplete" card.
MEDICATIONS = "medications"
BONE_DENSITY = "bone density tests"

AROMATASE_INHIBITORS = "aromatase-inhibitors"
AI_INGREDIENTS = ("anastrozole", "letrozole", "exemestane")

# Normalised medication status: what the record says about use now.
_STATEMENT_STATUS = {
    "active": "active",
    "intended": "active",
    "on-hold": "on-hold",
    "stopped": "stopped",
    "completed": "completed",
    "not-taken": "not-taken",
    "unknown": "unknown",
}
_REQUEST_STATUS = {
    "active": "active",
    "on-hold": "on-hold",
    "stopped": "stopped",
    "cancelled": "stopped",
    "completed": "completed",
    "unknown": "unknown",
}
_NOT_A_USE_INTENT = {"proposal", "option", "directive"}
_VOID_OBSERVATION = {"entered-in-error", "cancelled", "registered"}


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

    @property
    def is_current(self) -> bool:
        return self.status == "active"

    def belongs_to(self, group: str) -> bool:
        return group in self.groups


@dataclass(frozen=True)
class BoneDensityTest:
    """A DXA: a result Observation, a DiagnosticReport or a Procedure."""

    when: date
    source: str
    name: str
    t_score: float | None
    unverified_codes: tuple[str, ...]


@dataclass(frozen=True)
class PatientFacts:
    today: date
    unavailable: frozenset[str]
    medications: tuple[MedicationUse, ...]
    bone_density_tests: tuple[BoneDensityTest, ...]

    def knows(self, *sources: str) -> bool:
        return not self.unavailable.intersection(sources)

    def current(self, group: str) -> tuple[MedicationUse, ...]:
        return tuple(m for m in self.medications if m.is_current and m.belongs_to(group))

    @property
    def current_aromatase_inhibitors(self) -> tuple[MedicationUse, ...]:
        return self.current(AROMATASE_INHIBITORS)

    @property
    def last_bone_density_test(self) -> BoneDensityTest | None:
        return max(self.bone_density_tests, key=lambda test: test.when, default=None)


def extract_facts(
    resources: Iterable[Resource],
    knowledge: Knowledge,
    today: date,
    unavailable: Iterable[str] = (),
) -> PatientFacts:
    by_type: dict[str, list[Resource]] = {}
    for resource in _unique(resources):
        by_type.setdefault(resource.get("resourceType", ""), []).append(resource)
    medications_by_reference = {
        key: med for med in by_type.get("Medication", []) if (key := reference_key(med))
    }
    medications = tuple(
        use
        for resource in (*by_type.get("MedicationStatement", []), *by_type.get("MedicationRequest", []))
        if (use := _medication_use(resource, knowledge, medications_by_reference)) is not None
    )
    return PatientFacts(
        today=today,
        unavailable=frozenset(unavailable),
        medications=medications,
        bone_density_tests=tuple(_bone_density_tests(by_type, knowledge)),
    )


def _unique(resources: Iterable[Resource]) -> Iterable[Resource]:
    """The same resource may arrive under two prefetch keys; count it once."""
    seen: set[str] = set()
    for resource in resources:
        key = reference_key(resource)
        if key is None or key not in seen:
            if key:
                seen.add(key)
            yield resource


def _medication_use(
    resource: Resource, knowledge: Knowledge, medications: Mapping[str, Resource]
) -> MedicationUse | None:
    kind = resource.get("resourceType")
    if kind == "MedicationStatement":
        status = _STATEMENT_STATUS.get(resource.get("status", ""))
        start = first_date(resource, "effectivePeriod.start", "effectiveDateTime", "dateAsserted")
        end = first_date(resource, "effectivePeriod.end")
    else:
        if resource.get("intent") in _NOT_A_USE_INTENT:
            return None
        status = _REQUEST_STATUS.get(resource.get("status", ""))
        start = first_date(resource, "authoredOn")
        validity = resource.get("dispenseRequest", {}).get("validityPeriod")
        end = first_date({"v": validity}, "v.end") if isinstance(validity, Mapping) else None
    if status is None:
        return None
    concept, name = _medication_concept(resource, medications)
    matches = knowledge.matches(codings(concept))
    if not matches:
        return None
    return MedicationUse(
        groups=frozenset(m.valueset for m in matches),
        name=name or matches[0].display,
        status=status,
        start=start,
        end=end,
        source=reference_key(resource) or kind,
        unverified_codes=_unverified(matches),
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
    if reference.startswith("#"):
        medication = next(
            (c for c in resource.get("contained", []) if c.get("id") == reference[1:]), None
        )
    else:
        medication = medications.get(reference)
    if medication is None:
        return {}, None
    all_codings = list(codings(medication.get("code")))
    for ingredient in medication.get("ingredient", []):
        all_codings += codings(ingredient.get("itemCodeableConcept"))
    return {"coding": all_codings}, concept_text(medication.get("code"))


def _bone_density_tests(
    by_type: Mapping[str, list[Resource]], knowledge: Knowledge
) -> Iterable[BoneDensityTest]:
    for observation in by_type.get("Observation", []):
        if observation.get("status") in _VOID_OBSERVATION:
            continue
        matches = knowledge.matches(codings(observation.get("code")))
        if not any(m.valueset == "dxa-results" for m in matches):
            continue
        when = first_date(observation, "effectiveDateTime", "effectivePeriod.start", "issued")
        if when is None:
            continue
        t_score = None
        if any(m.valueset == "dxa-t-scores" for m in matches):
            value = (observation.get("valueQuantity") or {}).get("value")
            t_score = float(value) if isinstance(value, int | float) else None
        yield BoneDensityTest(
            when, reference_key(observation) or "Observation",
            concept_text(observation.get("code")) or matches[0].display, t_score, _unverified(matches),
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


def _unverified(matches: Iterable[CodeMatch]) -> tuple[str, ...]:
    return tuple(sorted({f"{m.code} ({m.display})" for m in matches if not m.verified}))
