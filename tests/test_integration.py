"""The service against a real FHIR R4 server (sekmet-fhir), with and without prefetch."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urljoin

import httpx
import pytest

from cds_service.fhir.client import FhirClient
from cds_service.fhir.gather import render_template
from sandbox.synthetic import DXA_FEMUR_T, observation, sandbox_drafts, sandbox_patients
from tests.conftest import TODAY, post_transaction
from tests.helpers import (
    assert_valid_cards,
    card_holding,
    card_topics,
    order_select,
    patient_view,
    per_recommendation,
    suggestions_for,
    topics,
)

PATIENTS = {patient.id: patient for patient in sandbox_patients(TODAY)}
DRAFTS = {draft.id: draft for draft in sandbox_drafts(list(PATIENTS.values()))}


@pytest.fixture(scope="module")
def loaded_fhir(fhir_server):
    for patient in PATIENTS.values():
        post_transaction(fhir_server, patient.transaction())
    return fhir_server


def prefetch_like_an_ehr(client, fhir_base: str, patient_id: str) -> dict:
    """Fill every template of the service from the FHIR server, as an EHR would."""
    (service,) = [s for s in client.get("/cds-services").json()["services"] if s["id"] == "aimss-patient-view"]
    context = {"patientId": patient_id, "userId": "Practitioner/COREPRACTITIONER1"}
    return {
        key: httpx.get(urljoin(fhir_base + "/", render_template(template, context)), timeout=10).json()
        for key, template in service["prefetch"].items()
    }


@pytest.mark.parametrize("patient_id", sorted(PATIENTS))
def test_without_prefetch_the_service_reads_the_fhir_server(client, loaded_fhir, patient_id):
    response = client.post(
        "/cds-services/aimss-patient-view", json=patient_view(patient_id, fhirServer=loaded_fhir)
    )
    assert response.status_code == 200
    assert_valid_cards(response.json())
    assert topics(response.json()) == PATIENTS[patient_id].expected


@pytest.mark.parametrize("patient_id", sorted(PATIENTS))
def test_with_full_prefetch_the_answer_is_the_same(client, loaded_fhir, patient_id):
    prefetch = prefetch_like_an_ehr(client, loaded_fhir, patient_id)
    body = patient_view(patient_id, fhirServer="http://127.0.0.1:9/fhir", prefetch=prefetch)
    response = client.post("/cds-services/aimss-patient-view", json=body)
    assert topics(response.json()) == PATIENTS[patient_id].expected


@pytest.mark.parametrize("patient_id", sorted(PATIENTS))
def test_one_card_per_recommendation_gives_the_former_cards(make_client, tmp_path, loaded_fhir, patient_id):
    client = make_client(rules_file=per_recommendation(tmp_path))
    response = client.post("/cds-services/aimss-patient-view", json=patient_view(patient_id, fhirServer=loaded_fhir))
    assert response.status_code == 200
    assert_valid_cards(response.json())
    assert sorted(card_topics(response.json())) == sorted(PATIENTS[patient_id].expected)
    assert all("extension" not in card for card in response.json()["cards"])


@pytest.mark.parametrize("draft_id", sorted(DRAFTS))
def test_every_sandbox_draft_gets_its_order_select_cards(client, loaded_fhir, draft_id):
    draft = DRAFTS[draft_id]
    body = order_select(draft.resource(TODAY), draft.patient_id, fhirServer=loaded_fhir)
    body["context"]["selections"] = [f"MedicationRequest/{draft.id}"]
    response = client.post("/cds-services/aimss-order-select", json=body)
    assert response.status_code == 200
    assert_valid_cards(response.json())
    assert topics(response.json()) == draft.expected


def test_the_dxa_suggestion_is_a_valid_r4_service_request_for_the_patient(client, loaded_fhir):
    body = patient_view("aimss-no-dxa", fhirServer=loaded_fhir)
    cards = client.post("/cds-services/aimss-patient-view", json=body).json()["cards"]
    (suggestion,) = suggestions_for(card_holding(cards, "bone-density-scan"), "bone-density-scan")
    resource = suggestion["actions"][0]["resource"]
    assert resource["resourceType"] == "ServiceRequest"
    assert resource["subject"]["reference"] == "Patient/aimss-no-dxa"
    created = httpx.post(f"{loaded_fhir}/ServiceRequest", json=resource, timeout=10)
    assert created.status_code == 201, "the real server accepts the suggested order as R4"


def test_a_dead_fhir_server_is_412_in_bounded_time(make_client):
    client = make_client(hook_deadline=1.0)
    started = time.monotonic()
    response = client.post(
        "/cds-services/aimss-patient-view", json=patient_view(fhirServer="http://127.0.0.1:9/fhir")
    )
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
    assert time.monotonic() - started < 3


def test_the_client_follows_every_page(fhir_server):
    entries = [
        observation("paged", f"paged-{i}", DXA_FEMUR_T, TODAY, -1.0 - i / 10, "{T-score}")
        for i in range(12)
    ]
    post_transaction(
        fhir_server,
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r, "request": {"method": "PUT", "url": f"Observation/{r['id']}"}}
                for r in entries
            ],
        },
    )

    async def fetch() -> list[dict]:
        async with httpx.AsyncClient() as http:
            client = FhirClient(http, fhir_server, None, timeout=5, max_pages=10)
            return await client.fetch("Observation?patient=paged&_count=5")

    assert sorted(r["id"] for r in asyncio.run(fetch())) == sorted(r["id"] for r in entries)
