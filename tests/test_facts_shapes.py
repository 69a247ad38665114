"""The facts read data however EHRs shape it (tests/corpus/PROVENANCE.md): panel components,
several codings, periods, partial dates, offsets, integer values, statuses, referenced and
contained Medications, ingredient codings. One reader per test, through ``extract_facts``."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.clinical.facts import extract_facts
from cds_service.clinical.facts.model import PatientFacts
from cds_service.knowledge.loader import load_knowledge
from cds_service.settings import default_profiles_dir
from sandbox.synthetic import LOINC, RXNORM, SNOMED
from tests.conftest import TODAY

P = "shapes"
SUBJECT = {"reference": f"Patient/{P}"}
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
HIP_L_T = {"system": LOINC, "code": "80946-7", "display": "DXA Hip-L T-score BMD"}
FEMUR_L_T = {"system": LOINC, "code": "80948-3", "display": "DXA Femur-L T-score BMD"}
HIP_L_Z = {"system": LOINC, "code": "80938-4", "display": "DXA Hip-L Z-score BMD"}
PANEL = {"system": LOINC, "code": "83311-1", "display": "DXA Bone density quantitative measurement panel"}
PAIN_NRS = {"system": LOINC, "code": "72514-3", "display": "Pain severity - 0-10 verbal numeric rating"}
LOCAL = {"system": "http://acme.org/devices/clinical-codes", "code": "pain-nrs", "display": "Pain score"}
ANASTROZOLE_IN = {"system": RXNORM, "code": "84857", "display": "anastrozole"}


KNOWLEDGE = load_knowledge(default_profiles_dir())


def facts(*resources: dict[str, Any]) -> PatientFacts:
    return extract_facts(resources, KNOWLEDGE, TODAY)


def observation(rid: str, *codings: dict, status: str = "final", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": status, "subject": SUBJECT,
            "code": {"coding": list(codings)}, **fields}


def component(coding: dict, value: float) -> dict[str, Any]:
    return {"code": {"coding": [coding]}, "valueQuantity": {"value": value, "unit": "{T-score}"}}


def test_dxa_panel_t_scores_are_read_from_components_each_with_its_site():
    panel = observation("panel", PANEL, effectiveDateTime="2026-08-03T08:30:00+01:00", component=[
        component(HIP_L_T, -2.6), component(HIP_L_Z, -0.9), component(FEMUR_L_T, -1.9)])
    scored = {(t.site, t.t_score) for t in facts(panel).bone_density_tests if t.t_score is not None}
    assert scored == {("80946-7", -2.6), ("80948-3", -1.9)}, "the Z-score is not a T-score"
    assert {t.when.isoformat() for t in facts(panel).bone_density_tests} == {"2026-08-03"}


def test_a_panel_component_takes_the_panels_status():
    panel = observation("panel", PANEL, status="entered-in-error", effectiveDateTime="2026-08-03",
                        component=[component(HIP_L_T, -2.6)])
    assert facts(panel).bone_density_tests == ()


def test_any_coding_of_an_observation_is_matched_local_code_first():
    score = observation("p", LOCAL, PAIN_NRS, effectiveDateTime="2026-11-10", valueInteger=6)
    (measured,) = facts(score).pain_scores
    assert measured.value == 6 and measured.code == "72514-3"


@pytest.mark.parametrize(("effective", "day"), [
    ({"effectiveDateTime": "2026-11-10T23:30:00-05:00"}, "2026-11-10"),  # the local day, not UTC's
    ({"effectiveDateTime": "2026-11-11T01:30:00+09:00"}, "2026-11-11"),
    ({"effectiveDateTime": "2026-09"}, "2026-09-01"),
    ({"effectivePeriod": {"start": "2026-07-01T09:30:10+02:00", "end": "2026-07-01T09:45:00+02:00"}}, "2026-07-01"),
    ({"effectivePeriod": {"end": "2026-07-02"}}, "2026-07-02"),
    ({"effectiveInstant": "2026-10-05T12:00:00.123Z"}, "2026-10-05"),
])
def test_an_observation_date_however_it_is_written(effective, day):
    (measured,) = facts(observation("p", PAIN_NRS, valueInteger=3, **effective)).pain_scores
    assert measured.when.isoformat() == day


@pytest.mark.parametrize("value", [
    {"valueInteger": 5}, {"valueQuantity": {"value": 5, "unit": "{score}"}}, {"valueDecimal": 5.0},
])
def test_integer_and_quantity_values_read_alike(value):
    (measured,) = facts(observation("p", PAIN_NRS, effectiveDateTime="2026-11-10", **value)).pain_scores
    assert measured.value == 5


@pytest.mark.parametrize(("status", "counts"), [
    ("final", True), ("amended", True), ("corrected", True), ("preliminary", True),
    ("entered-in-error", False), ("cancelled", False), ("registered", False),
])
def test_observation_status_amended_or_corrected_counts_void_ones_do_not(status, counts):
    score = observation("p", PAIN_NRS, status=status, effectiveDateTime="2026-11-10", valueInteger=5)
    assert bool(facts(score).pain_scores) is counts


def condition(clinical: str | None, verification: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition", "id": f"c-{clinical}-{verification}", "subject": SUBJECT,
        "code": {"coding": [{"system": SNOMED, "code": "64859006", "display": "Osteoporosis (disorder)"}]},
        "onsetDateTime": "2026-09",
    }
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    if verification:
        resource["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
    return resource


@pytest.mark.parametrize(("clinical", "verification", "counts"), [
    ("active", "confirmed", True), ("recurrence", "provisional", True), ("active", None, True),
    ("active", "refuted", False), (None, "entered-in-error", False), ("active", "entered-in-error", False),
    ("resolved", "confirmed", False), ("inactive", None, False), ("remission", "confirmed", False),
    (None, "confirmed", True), (None, None, True),
])
def test_conditions_by_clinical_and_verification_status(clinical, verification, counts):
    found = facts(condition(clinical, verification)).has("osteoporosis")
    assert bool(found) is counts
    if counts:
        assert found[0].when is not None and found[0].when.isoformat() == "2026-09-01"


@pytest.mark.parametrize(("dates", "counts"), [
    ({"onsetDateTime": "2019-03-02", "recordedDate": "2026-10-01"}, True),
    ({"onsetDateTime": "2019-03-02", "recordedDate": "2019-03-02"}, False),
    ({"onsetDateTime": "2026-09", "abatementDateTime": "2026-10-15"}, False),
    ({"onsetDateTime": "2026-09", "abatementString": "after physiotherapy"}, False),
    ({}, False),
], ids=["diagnosed-recently", "diagnosed-years-ago", "abated", "abated-as-text", "undated"])
def test_a_condition_without_clinical_status_is_a_diagnosis_of_its_date(dates, counts):
    """FHIR R4 lets an encounter diagnosis go without a clinical status (con-3): it counts like a
    score, inside the lookback window, and not once abated (con-4)."""
    resource = {k: v for k, v in condition(None, "confirmed").items() if k != "onsetDateTime"} | dates
    assert bool(facts(resource).has("osteoporosis")) is counts


def test_an_active_problem_counts_however_long_ago_its_onset():
    resource = condition("active", "confirmed") | {"onsetDateTime": "2012-05-01"}
    assert facts(resource).has("osteoporosis")


def request(medication: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "mr", "status": "active", "intent": "order",
            "subject": SUBJECT, "authoredOn": "2026-03-21", **medication, **fields}


def medication(rid: str, *codings: dict, ingredients: tuple[dict, ...] = ()) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Medication", "id": rid, "code": {"coding": list(codings)}}
    if ingredients:
        resource["ingredient"] = [{"itemCodeableConcept": {"coding": [i]}} for i in ingredients]
    return resource


ARIMIDEX = {"system": RXNORM, "code": "262485", "display": "Arimidex"}


@pytest.mark.parametrize("reference", [
    "Medication/arimidex",
    "https://ehr.example.org/fhir/R4/Medication/arimidex",
])
def test_a_referenced_medication_is_read_relative_or_absolute(reference):
    chart = (request({"medicationReference": {"reference": reference}}), medication("arimidex", ARIMIDEX))
    (use,) = facts(*chart).current_aromatase_inhibitors
    assert use.groups >= {"anastrozole", "aromatase-inhibitors"}


def test_a_contained_medication_is_read():
    chart = request({"medicationReference": {"reference": "#1"}}, contained=[medication("1", ARIMIDEX)])
    assert facts(chart).current_aromatase_inhibitors


def test_a_medication_statement_with_a_referenced_medication_is_read():
    statement = {"resourceType": "MedicationStatement", "id": "ms", "status": "active", "subject": SUBJECT,
                 "medicationReference": {"reference": "Medication/arimidex"},
                 "effectivePeriod": {"start": "2026-03"}}
    (use,) = facts(statement, medication("arimidex", ARIMIDEX)).current_aromatase_inhibitors
    assert use.start is not None and use.start.isoformat() == "2026-03-01"


def test_a_reference_that_cannot_be_resolved_is_no_drug():
    assert facts(request({"medicationReference": {"reference": "Medication/elsewhere"}})).medications == ()


OBSOLETE = {"system": RXNORM, "code": "0000000", "display": "an obsolete anastrozole product"}


def test_a_product_code_the_table_lacks_is_matched_by_its_medications_ingredient():
    chart = (request({"medicationReference": {"reference": "Medication/old"}}),
             medication("old", OBSOLETE, ingredients=(ANASTROZOLE_IN,)))
    (use,) = facts(*chart).current_aromatase_inhibitors
    assert "anastrozole" in use.groups


def test_an_ingredient_coding_beside_an_unknown_product_code_is_matched():
    chart = request({"medicationCodeableConcept": {"coding": [OBSOLETE, ANASTROZOLE_IN]}})
    assert facts(chart).current_aromatase_inhibitors


def test_a_known_product_code_decides_over_its_ingredients():
    """Ingredients are the fallback for unknown products only: a product's own code (which
    tells, say, a vaginal estrogen from a systemic one) is never overridden by its ingredient."""
    raloxifene = {"system": RXNORM, "code": "1490065", "display": "raloxifene hydrochloride 60 MG Oral Tablet"}
    estradiol = {"system": RXNORM, "code": "4083", "display": "estradiol"}
    chart = (request({"medicationReference": {"reference": "Medication/m"}}),
             medication("m", raloxifene, ingredients=(estradiol,)))
    (use,) = facts(*chart).medications
    assert "serms" in use.groups and "systemic-estrogens" not in use.groups
