"""The sandbox patients: every topic covered, only codes of the ValueSets, always fresh."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from cds_service.clinical.facts import extract_facts
from cds_service.clinical.facts.medications import drafted_orders
from cds_service.clinical.rules.order_select import evaluate_order_select
from cds_service.clinical.rules.patient_view import evaluate_patient_view
from cds_service.settings import default_profiles_dir
from sandbox.synthetic import LOINC, RXNORM, sandbox_drafts, sandbox_patients
from tests.conftest import TODAY

PROFILES = default_profiles_dir()
# DESIGN §4: the order-select topics; analgesic-expectations belongs to both hooks.
ORDER_SELECT_TOPICS = {
    "serm-with-ai", "estrogen-with-ai", "tamoxifen-cyp2d6", "serotonergic-interaction",
    "analgesic-expectations", "ai-start-bone-health",
}
# The topics of the cards that group patient-view recommendations (DESIGN §4 Presentation).
CARD_TOPICS = {"aimss-plan", "bone-health"}
CLINICAL_SYSTEMS = {RXNORM, LOINC, "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"}


def all_topics() -> set[str]:
    codesystem = json.loads((PROFILES / "CodeSystem-aimss-card-topics.json").read_text())
    return {concept["code"] for concept in codesystem["concept"]}


def valueset_displays() -> dict[tuple[str, str], str]:
    found = {}
    for path in PROFILES.glob("ValueSet-*.json"):
        for include in json.loads(path.read_text()).get("compose", {}).get("include", []):
            for concept in include.get("concept", []):
                found[(include["system"], concept["code"])] = concept.get("display", "")
    return found


def clinical_codings(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("system") in CLINICAL_SYSTEMS and "code" in value:
            yield value
        for child in value.values():
            yield from clinical_codings(child)
    elif isinstance(value, list):
        for child in value:
            yield from clinical_codings(child)


def test_every_patient_view_topic_has_a_patient():
    patient_view = all_topics() - (ORDER_SELECT_TOPICS - {"analgesic-expectations"}) - {"data-incomplete"} - CARD_TOPICS
    shown = set().union(*(p.expected for p in sandbox_patients(TODAY)))
    assert patient_view - shown == set()


def test_every_order_select_topic_has_a_draft():
    shown = set().union(*(d.expected for d in sandbox_drafts(sandbox_patients(TODAY))))
    assert ORDER_SELECT_TOPICS - shown == set()


def test_a_patient_without_an_ai_and_one_with_almost_no_data():
    patients = sandbox_patients(TODAY)
    assert [p.id for p in patients if not p.expected] == ["aimss-no-ai", "aimss-sparse"]
    assert len(next(p for p in patients if p.id == "aimss-sparse").resources) == 1


def test_only_codes_of_the_valuesets_with_their_displays():
    known = valueset_displays()
    patients = sandbox_patients(TODAY)
    resources = [r for p in patients for r in p.resources]
    resources += [d.resource(TODAY) for d in sandbox_drafts(patients)]
    codings = list(clinical_codings(resources))
    assert codings
    for coding in codings:
        key = (coding["system"], coding["code"])
        assert key in known, f"{key} is in no ValueSet of fhir_profiles"
        assert coding["display"] == known[key], key


def test_resources_are_unique_and_belong_to_their_patient():
    patients = sandbox_patients(TODAY)
    ids = [(r["resourceType"], r["id"]) for p in patients for r in p.resources]
    assert len(ids) == len(set(ids))
    for patient in patients:
        for resource in patient.resources:
            assert resource["subject"]["reference"] == f"Patient/{patient.id}"


@pytest.mark.parametrize("today", [TODAY, date(2027, 3, 31), date(2028, 2, 29)])
def test_the_expected_topics_hold_on_any_day(knowledge, today):
    """Dates are relative to ``today``, so the patients never go stale (month ends included)."""
    for patient in sandbox_patients(today):
        facts = extract_facts(patient.resources, knowledge, today)
        assert {f.topic for f in evaluate_patient_view(facts, knowledge)} == patient.expected, patient.id
        for draft in patient.drafts:
            entries = [{"resource": draft.resource(today)}]
            selected = drafted_orders(entries, [f"MedicationRequest/{draft.id}"], knowledge)
            found = {f.topic for f in evaluate_order_select(facts, knowledge, selected)}
            assert found == draft.expected, draft.id
