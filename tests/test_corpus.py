"""The metamorphic corpus (tests/corpus/PROVENANCE.md): for every case the plain and the
real-world shape of the same clinical facts give the same cards (topic, indicator, summary),
the expected ones, whether the data comes in prefetch or from the real FHIR server."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from cds_service.fhir.gather import render_template
from tests.conftest import post_transaction
from tests.corpus import SHAPES, Case, load_cases, without_included
from tests.helpers import assert_valid_cards, patient_view, topics

CASES = {case.name: case for case in load_cases()}
DEAD_SERVER = "http://127.0.0.1:9/fhir"


@pytest.fixture(scope="module")
def corpus_fhir(fhir_server: str) -> str:
    for case in CASES.values():
        for shape in SHAPES:
            post_transaction(fhir_server, case.transaction(shape))
    return fhir_server


def prefetch_like_an_ehr(client: Any, fhir_base: str, patient_id: str) -> dict[str, Any]:
    """Every template of the patient-view service, filled from the FHIR server."""
    (service,) = [s for s in client.get("/cds-services").json()["services"] if s["id"] == "aimss-patient-view"]
    context = {"patientId": patient_id, "userId": "Practitioner/COREPRACTITIONER1"}
    return {
        key: httpx.get(urljoin(fhir_base + "/", render_template(template, context)), timeout=10).json()
        for key, template in service["prefetch"].items()
    }


def cards(client: Any, fhir_base: str, case: Case, shape: str, mode: str) -> list[tuple[str, str, str]]:
    patient = case.patient(shape)
    if mode == "server":
        body = patient_view(patient, fhirServer=fhir_base)
    else:
        prefetch = prefetch_like_an_ehr(client, fhir_base, patient)
        if mode == "reference-only":
            body = patient_view(patient, fhirServer=fhir_base, prefetch=without_included(prefetch))
        else:
            body = patient_view(patient, fhirServer=DEAD_SERVER, prefetch=prefetch)
    response = client.post("/cds-services/aimss-patient-view", json=body)
    assert response.status_code == 200, response.text[:300]
    assert_valid_cards(response.json())
    return sorted(  # a grouped card by the recommendations it holds
        (" ".join(sorted(topics({"cards": [c]}))), c["indicator"], c["summary"]) for c in response.json()["cards"]
    )


PARAMS = [
    pytest.param(name, mode, id=f"{name}-{mode}") for name, case in CASES.items() for mode in case.modes
]


@pytest.mark.parametrize(("name", "mode"), PARAMS)
def test_plain_and_real_world_shapes_give_the_same_cards(client, corpus_fhir, name, mode):
    case = CASES[name]
    plain = cards(client, corpus_fhir, case, "plain", "prefetch" if mode == "reference-only" else mode)
    real = cards(client, corpus_fhir, case, "real", mode)
    assert {topic for held, _, _ in plain for topic in held.split()} == case.expected, "the plain shape is the reference"
    assert real == plain


def test_every_case_has_one_patient_per_shape_and_its_own_ids():
    seen: set[str] = set()
    for case in CASES.values():
        assert case.expected and case.modes
        assert case.patient("plain") != case.patient("real")
        for shape in SHAPES:
            keys = {f"{r['resourceType']}/{r['id']}" for r in case.shapes[shape]}
            assert len(keys) == len(case.shapes[shape]) and not keys & seen, case.name
            seen |= keys


def test_a_referenced_medication_that_cannot_be_read_is_412_not_a_drug_less_chart(client, corpus_fhir):
    case = CASES["uscore-medication-include"]
    prefetch = without_included(prefetch_like_an_ehr(client, corpus_fhir, case.patient("real")))
    response = client.post("/cds-services/aimss-patient-view", json=patient_view(case.patient("real"), prefetch=prefetch))
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
