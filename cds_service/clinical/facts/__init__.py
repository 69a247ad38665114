"""Pure extraction of the facts the rules read from a patient's FHIR resources, by resource kind.

Real-world variety is tolerated (see each module); missing data is unknown, not "no"
(``model.PatientFacts.unavailable``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

from cds_service.clinical.dates import months_before
from cds_service.clinical.facts.bone_density import bone_density_tests
from cds_service.clinical.facts.conditions import active_conditions
from cds_service.clinical.facts.interventions import recent_interventions
from cds_service.clinical.facts.medications import medication_use
from cds_service.clinical.facts.model import DataSource, Measurement, PatientFacts
from cds_service.clinical.facts.observations import (
    measurements_in,
    observations_by_valueset,
    recent,
    vitamin_d,
)
from cds_service.clinical.facts.questionnaires import bpi_from_questionnaires
from cds_service.fhir.resources import Resource, reference_key
from cds_service.knowledge.loader import Knowledge


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
    observations = observations_by_valueset(by_type.get("Observation", []), knowledge)
    medications_by_reference = {
        key: med for med in by_type.get("Medication", []) if (key := reference_key(med))
    }
    medications = tuple(
        use
        for resource in (*by_type.get("MedicationStatement", []), *by_type.get("MedicationRequest", []))
        if (use := medication_use(resource, knowledge, medications_by_reference)) is not None
    )
    bpi_scores, bpi_pain = bpi_from_questionnaires(
        by_type.get("QuestionnaireResponse", []), knowledge.rules.facts.bpi_min_items_answered
    )

    def measured(valueset: str) -> Iterator[Measurement]:
        return measurements_in(observations.get(valueset, []), valueset)

    return PatientFacts(
        today=today,
        unavailable=frozenset(DataSource(source) for source in unavailable),
        medications=medications,
        bone_density_tests=tuple(
            bone_density_tests(by_type, observations.get("dxa-results", []), knowledge)
        ),
        pain_scores=recent([*measured("pain-severity"), *bpi_pain], since),
        bpi_interference=recent([*measured("bpi-interference"), *bpi_scores], since),
        phq9=recent(measured("phq9"), since),
        tsh=recent(measured("tsh"), since),
        vitamin_d=recent(vitamin_d(observations.get("vitamin-d-25oh", [])), since),
        creatinine_clearance=recent(measured("creatinine-clearance"), since),
        egfr=recent(measured("egfr"), since),
        serum_calcium=recent(measured("serum-calcium"), since),
        conditions=tuple(active_conditions(by_type.get("Condition", []), knowledge, since)),
        interventions=tuple(recent_interventions(by_type, knowledge, since)),
    )


def _unique(resources: Iterable[Resource]) -> Iterator[Resource]:
    """The same resource may arrive under two prefetch keys; count it once."""
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        kind, id_ = resource.get("resourceType"), resource.get("id")
        if not (isinstance(kind, str) and isinstance(id_, str)):
            yield resource
        elif (kind, id_) not in seen:
            seen.add((kind, id_))
            yield resource
