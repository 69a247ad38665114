"""CDS Hooks 2.0 conformance, with the exact request shapes of the public sandbox."""

from __future__ import annotations

import logging
import re

import pytest

from tests.helpers import (
    ALLOWED_TOKENS,
    assert_valid_cards,
    card_holding,
    draft_without_drug,
    empty_members,
    order_select,
    patient_view,
    per_recommendation,
    suggestions_for,
    topics,
)

CLOSED_PORT_FHIR = "http://127.0.0.1:9/fhir"  # nothing listens on the discard port

ANASTROZOLE = {
    "resourceType": "MedicationStatement",
    "id": "ms-1",
    "status": "active",
    "subject": {"reference": "Patient/pat-1"},
    "effectivePeriod": {"start": "2026-03-01"},
    "medicationCodeableConcept": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "199224",
                "display": "anastrozole 1 MG Oral Tablet",
            }
        ]
    },
}


def full_prefetch(*resources: dict) -> dict:
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
    others = ("medicationRequests", "dxaObservations", "dxaProcedures", "dxaReports", "painObservations",
              "bpiResponses", "labObservations", "conditions", "interventionRequests",
              "interventionProcedures")
    return {"medicationStatements": bundle} | dict.fromkeys(others)


def test_discovery_lists_the_three_services_without_empty_members(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert {i: s["hook"] for i, s in services.items()} == {
        "aimss-patient-view": "patient-view",
        "aimss-order-select": "order-select",
        "aimss-order-sign": "order-sign",
    }
    assert empty_members(response.json()) == []
    for service in services.values():
        assert service["title"] and service["description"] and service["usageRequirements"]


def test_prefetch_templates_use_only_2_0_tokens_and_narrow_queries(client):
    for service in client.get("/cds-services").json()["services"]:
        for key, template in service["prefetch"].items():
            for token in re.findall(r"\{\{(.*?)\}\}", template):
                assert ALLOWED_TOKENS.match(token.strip()), (key, token)
            resource_type, _, query = template.partition("?")
            assert "patient={{context.patientId}}" in query
            assert "code=" in query or "status=" in query, f"{key} asks for every {resource_type}"


def test_full_prefetch_needs_no_fhir_server(client):
    body = patient_view(fhirServer=CLOSED_PORT_FHIR, prefetch=full_prefetch(ANASTROZOLE))
    response = client.post("/cds-services/aimss-patient-view", json=body)
    assert response.status_code == 200
    assert "bone-density-scan" in topics(response.json())
    assert "data-incomplete" not in topics(response.json())
    assert_valid_cards(response.json())


def test_bone_density_scan_card_states_its_data_and_suggests_a_dxa(client):
    body = patient_view(prefetch=full_prefetch(ANASTROZOLE))
    cards = client.post("/cds-services/aimss-patient-view", json=body).json()["cards"]
    card = card_holding(cards, "bone-density-scan")
    assert card["source"]["topic"]["code"] == "bone-health"
    assert "anastrozole since 2026-03-01" in card["detail"]
    assert "DXA:** none on record" in card["detail"]
    (suggestion,) = suggestions_for(card, "bone-density-scan")
    (action,) = suggestion["actions"]
    assert action["type"] == "create"
    assert action["resource"]["resourceType"] == "ServiceRequest"
    assert action["resource"]["subject"] == {"reference": "Patient/pat-1"}


def test_extensions_and_unknown_members_are_accepted(client):
    body = patient_view(
        prefetch=full_prefetch(ANASTROZOLE),
        extension={"org.example.trace": {"id": 1}},
        futureMember=True,
    )
    body["context"]["extension"] = {"org.example.hint": "x"}
    assert client.post("/cds-services/aimss-patient-view", json=body).status_code == 200


def test_order_select_draft_without_a_drug_gets_no_cards_without_reading_the_chart(client):
    body = order_select(draft_without_drug(), fhirServer=CLOSED_PORT_FHIR)
    response = client.post("/cds-services/aimss-order-select", json=body)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_order_select_with_an_unrelated_drug_gets_no_cards(client):
    draft = draft_without_drug() | {
        "intent": "order",
        "medicationCodeableConcept": {
            "text": "lisinopril 10 MG Oral Tablet",  # in no ValueSet (etodolac is an NSAID)
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076"}],
        },
    }
    response = client.post("/cds-services/aimss-order-select", json=order_select(draft))
    assert response.json() == {"cards": []}


def test_patient_on_no_aromatase_inhibitor_gets_no_cards(client):
    tamoxifen = ANASTROZOLE | {
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "10324"}]
        }
    }
    body = patient_view(prefetch=full_prefetch(tamoxifen))
    assert client.post("/cds-services/aimss-patient-view", json=body).json() == {"cards": []}


@pytest.mark.parametrize(
    "content, why",
    [
        (b"{not json", "not JSON"),
        (b'{"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "p", "userId": "Practitioner/1"}, "prefetch": {"p": {"resourceType": "Observation", "valueQuantity": {"value": NaN}}}}', "NaN is not JSON"),
        (b'{"hook": "patient-view", "hookInstance": "\\ud800", "context": {"patientId": "p", "userId": "Practitioner/1"}}', "a lone surrogate is no text"),
        (b'{"hook": "patient-view", "hookInstance": "\xff", "context": {"patientId": "p", "userId": "Practitioner/1"}}', "not UTF-8"),
        (b"[]", "an array"),
        (b'{"hook": "patient-view"}', "no hookInstance nor context"),
        (b'{"hook": "patient-view", "hookInstance": "x", "context": "pat-1"}', "context not an object"),
        (b'{"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/1"}}', "no patientId"),
        (b'{"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "p", "userId": "nobody"}}', "userId not Type/id"),
        (b'{"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "p", "userId": "Practitioner/1"}, "prefetch": []}', "prefetch not an object"),
        (b'{"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "p", "userId": "Practitioner/1"}, "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "s", "subject": "c"}}', "fhirAuthorization without fhirServer"),
        (b'{"hook": "order-select", "hookInstance": "x", "context": {"patientId": "p", "userId": "Practitioner/1"}}', "hook of another service"),
    ],
)
def test_malformed_requests_get_400_with_an_operation_outcome(client, content, why):
    response = client.post(
        "/cds-services/aimss-patient-view", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, why
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error" and outcome["issue"][0]["diagnostics"]


def test_order_select_without_selections_is_malformed(client):
    body = order_select(draft_without_drug())
    body["context"]["selections"] = []
    assert client.post("/cds-services/aimss-order-select", json=body).status_code == 400


def test_unknown_service_is_404_with_an_operation_outcome(client):
    response = client.post("/cds-services/no-such-service", json=patient_view())
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_wrong_method_is_405_with_an_operation_outcome(client):
    response = client.get("/cds-services/aimss-patient-view")
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def test_prefetch_operation_outcome_is_unknown_not_normal(client):
    prefetch = full_prefetch(ANASTROZOLE)
    prefetch["dxaObservations"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    body = patient_view(prefetch=prefetch)
    response = client.post("/cds-services/aimss-patient-view", json=body).json()
    assert "bone-density-scan" not in topics(response), "no DXA must not be concluded from an error"
    assert response["cards"], "the other recommendations still show"
    for card in response["cards"]:  # said on every card, not on a card of its own
        assert "Could not be read: bone density tests" in card["detail"]
    assert "data-incomplete" not in topics(response)


def test_with_one_card_per_recommendation_unreadable_data_has_its_own_card(make_client, tmp_path):
    client = make_client(rules_file=per_recommendation(tmp_path))
    prefetch = full_prefetch(ANASTROZOLE)
    prefetch["dxaObservations"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    response = client.post("/cds-services/aimss-patient-view", json=patient_view(prefetch=prefetch)).json()
    assert "bone-density-scan" not in topics(response)
    (card,) = [c for c in response["cards"] if c["source"]["topic"]["code"] == "data-incomplete"]
    assert "bone density tests" in card["detail"]


@pytest.mark.parametrize("fhir_server", [None, CLOSED_PORT_FHIR])
def test_medications_unobtainable_is_412(client, fhir_server):
    prefetch = full_prefetch(ANASTROZOLE)
    del prefetch["medicationRequests"]
    body = patient_view(prefetch=prefetch) | ({"fhirServer": fhir_server} if fhir_server else {})
    response = client.post("/cds-services/aimss-patient-view", json=body)
    assert response.status_code == 412
    assert "medicationRequests" in response.json()["issue"][0]["diagnostics"]


def test_open_fhir_server_without_token_is_refused_unless_allowed(make_client, caplog):
    strict = make_client(allow_open_fhir=False)
    prefetch = full_prefetch(ANASTROZOLE)
    del prefetch["medicationRequests"]
    with caplog.at_level(logging.INFO, logger="aimss_cds"):
        response = strict.post(
            "/cds-services/aimss-patient-view",
            json=patient_view(prefetch=prefetch, fhirServer=CLOSED_PORT_FHIR),
        )
    assert response.status_code == 412
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert diagnostics.endswith(": medicationRequests") and "no_fhir_authorization" not in diagnostics
    assert "medicationRequests:no_fhir_authorization" in caplog.text


@pytest.mark.parametrize(
    "path, method",
    [
        ("/cds-services", "GET"),
        ("/cds-services/aimss-patient-view", "POST"),
        ("/cds-services/aimss-patient-view/feedback", "POST"),
    ],
)
def test_cors_preflight_succeeds_without_auth(make_client, path, method):
    secured = make_client(auth_disabled=False)
    response = secured.options(
        path,
        headers={
            "Origin": "http://127.0.0.1:8080",
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == "*"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


def test_nothing_is_open_by_default(make_client):
    secured = make_client(auth_disabled=False)
    response = secured.get("/cds-services", headers={"Origin": "http://127.0.0.1:8080"})
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    assert secured.post("/cds-services/aimss-patient-view", json=patient_view()).status_code == 401


WRONGLY_TYPED = {
    "medicationReference a string": {"resourceType": "MedicationStatement", "id": "x", "status": "active",
                                     "medicationReference": "oops"},
    "BPI item a number": {"resourceType": "QuestionnaireResponse", "id": "q", "status": "completed",
                          "authored": "2026-01-01", "item": [5]},
    "coding system a number": {"resourceType": "Condition", "id": "c", "clinicalStatus": "active",
                               "code": {"coding": [{"system": 5, "code": "M25.50"}]}},
}


def bundle_of(resource: dict) -> dict:
    return {"resourceType": "Bundle", "entry": [{"resource": resource}]}


@pytest.mark.parametrize("key", ["conditions", "bpiResponses", "painObservations"])
@pytest.mark.parametrize("broken", WRONGLY_TYPED.values(), ids=WRONGLY_TYPED.keys())
def test_wrongly_typed_fhir_content_costs_only_its_key(client, key, broken):
    prefetch = full_prefetch(ANASTROZOLE) | {key: bundle_of(broken)}
    response = client.post("/cds-services/aimss-patient-view", json=patient_view(prefetch=prefetch))
    assert response.status_code == 200, response.text
    assert_valid_cards(response.json())
    # The medications of the other key are still read: the patient is on an AI, no DXA on file.
    assert "bone-density-scan" in topics(response.json())


def test_a_key_whose_content_cannot_be_read_is_named_on_the_data_incomplete_card(client):
    prefetch = full_prefetch(ANASTROZOLE) | {"bpiResponses": bundle_of(WRONGLY_TYPED["BPI item a number"])}
    cards = client.post("/cds-services/aimss-patient-view", json=patient_view(prefetch=prefetch)).json()["cards"]
    assert cards and all("pain and BPI scores" in card["detail"] for card in cards)


def test_unreadable_medications_are_412(client):
    prefetch = full_prefetch(ANASTROZOLE) | {"medicationRequests": bundle_of(WRONGLY_TYPED["medicationReference a string"])}
    response = client.post("/cds-services/aimss-patient-view", json=patient_view(prefetch=prefetch))
    assert response.status_code == 412
    assert response.json()["issue"][0]["diagnostics"].endswith(": medicationRequests")


@pytest.mark.parametrize("broken", [{"resourceType": "Bundle", "entry": 5}, {"resourceType": "Bundle", "link": "x"}])
def test_malformed_bundle_members_read_as_no_entries(client, broken):
    prefetch = full_prefetch(ANASTROZOLE) | {"conditions": broken}
    response = client.post("/cds-services/aimss-patient-view", json=patient_view(prefetch=prefetch))
    assert response.status_code == 200
    assert "data-incomplete" not in topics(response.json())
