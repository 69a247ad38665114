"""Fuzzing: no input, however shaped, makes the service answer 5xx.

schemathesis drives every operation of the OpenAPI in-process; hypothesis builds hook calls
whose prefetch values, draft orders and contexts are arbitrary JSON in FHIR-like shapes (the
element names the facts read, holding values of every JSON type). The FHIR fallback goes to a
mock transport, so generated ``fhirServer`` URLs never reach the network.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis.checks import status_code_conformance

from cds_service.hooks.protocol import FeedbackRequest, HookRequest
from cds_service.settings import Settings
from cds_service.web.app import create_app
from tests.conftest import TODAY

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

RESOURCE_TYPES = (
    "MedicationStatement", "MedicationRequest", "Medication", "Observation", "Procedure",
    "DiagnosticReport", "QuestionnaireResponse", "Condition", "ServiceRequest", "Bundle",
    "OperationOutcome",
)
ELEMENTS = (
    "id", "status", "intent", "subject", "code", "coding", "system", "display", "text",
    "medicationCodeableConcept", "medicationReference", "contained", "ingredient", "itemCodeableConcept",
    "statusReason", "effectiveDateTime", "effectivePeriod", "start", "end", "dateAsserted", "authoredOn",
    "dispenseRequest", "validityPeriod", "valueQuantity", "value", "unit", "valueInteger", "valueDecimal",
    "valueString", "valueCodeableConcept", "valueCoding", "interpretation", "referenceRange", "low", "high",
    "component", "item", "linkId", "answer", "questionnaire", "authored", "clinicalStatus",
    "verificationStatus", "onsetDateTime", "onsetPeriod", "recordedDate", "performedDateTime",
    "performedPeriod", "occurrenceDateTime", "issued", "category", "bodySite", "reference", "entry",
    "resource", "link", "relation", "url", "issue", "severity", "resourceType",
)
SAMPLES = (
    "2026-01-01", "2025-06-30T10:00:00Z", "2026", "active", "completed", "stopped", "final",
    "http://www.nlm.nih.gov/research/umls/rxnorm", "199224", "http://loinc.org", "72514-3", "77565-0",
    "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm", "M25.50", "Medication/m1", "#m1",
    "next", "error", "H", "-2.7", "7",
)
scalars = (
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.sampled_from([2**70, -(2**70)])
    | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(SAMPLES) | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(ELEMENTS) | st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
resources = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(RESOURCE_TYPES) | json_values},
    optional={name: json_values for name in ELEMENTS[:40]},
)
bundles = st.fixed_dictionaries(
    {"resourceType": st.just("Bundle")},
    optional={
        "entry": st.lists(st.fixed_dictionaries({"resource": resources}) | json_values, max_size=4) | json_values,
        "link": json_values,
    },
)
prefetch_values = st.none() | bundles | resources | st.dictionaries(st.text(max_size=5), json_values, max_size=3)
PREFETCH_KEYS = (
    "medicationStatements", "medicationRequests", "dxaObservations", "dxaProcedures", "dxaReports",
    "painObservations", "bpiResponses", "labObservations", "conditions", "interventionRequests",
    "interventionProcedures",
)
prefetches = st.dictionaries(st.sampled_from(PREFETCH_KEYS) | st.text(max_size=5), prefetch_values, max_size=10)


def empty_bundle(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with auth off, its FHIR fallback answered in-process (no network)."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        Settings(auth_disabled=True, allow_open_fhir=True, database_url=f"sqlite:///{folder}/fuzz.db",
                 docs_enabled=True,  # schemathesis reads /openapi.json
                 hook_deadline=0.5),
        clock=lambda: TODAY,
    )
    with TestClient(app) as client:
        runtime = app.state.runtime
        mock = httpx.AsyncClient(transport=httpx.MockTransport(empty_bundle))
        runtime.fhir = dataclasses.replace(runtime.fhir, http=mock)
        yield client


def test_no_operation_answers_5xx(app_client: TestClient) -> None:
    """Every operation of the OpenAPI, with schemathesis's generated requests (in-process): never
a 5xx, and every answer's status is one the OpenAPI documents for that operation."""
    api = schemathesis.openapi.from_asgi("/openapi.json", app_client.app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /cds-services", "POST /cds-services/{service_id}", "POST /cds-services/{service_id}/feedback",
    }
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            response = case.call()
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
            case.validate_response(response, checks=[status_code_conformance])  # documented

        call()


@FUZZ
@given(body=json_values)
def test_hook_request_model_raises_only_validation_errors(body: Any) -> None:
    with contextlib.suppress(ValidationError):
        HookRequest.model_validate(body)


@FUZZ
@given(body=st.fixed_dictionaries({"feedback": st.lists(json_values | st.fixed_dictionaries(
    {"card": json_values, "outcome": st.sampled_from(["accepted", "overridden"]) | json_values,
     "outcomeTimestamp": st.sampled_from(["2026-11-21T10:00:00Z", "x"]) | json_values},
    optional={"acceptedSuggestions": json_values, "overrideReason": json_values},
), max_size=3) | json_values}))
def test_feedback_model_raises_only_validation_errors(body: Any) -> None:
    with contextlib.suppress(ValidationError):
        FeedbackRequest.model_validate(body)


def _context(patient: Any, extra: dict[str, Any]) -> dict[str, Any]:
    return {"patientId": patient, "userId": "Practitioner/p1", **extra}


# Valid ids, so calls get past validation to gather, facts and rules (the models are fuzzed above).
contexts = st.builds(
    _context, st.sampled_from(["pat-1", "p.2-x"]), st.dictionaries(st.text(max_size=6), json_values, max_size=3)
)


@FUZZ
@given(context=contexts, prefetch=prefetches, server=st.sampled_from([None, "https://fhir.example.org/r4"]))
def test_patient_view_with_arbitrary_prefetch_is_never_a_500(app_client, context, prefetch, server):
    body: dict[str, Any] = {"hook": "patient-view", "hookInstance": "fuzz", "context": context, "prefetch": prefetch}
    if server:
        body["fhirServer"] = server
    response = app_client.post("/cds-services/aimss-patient-view", json=body)
    assert response.status_code in (200, 400, 412), response.text[:300]


SELECTED = "MedicationRequest/request-123"
drafted = st.builds(
    lambda resource, concept: {**resource, "resourceType": "MedicationRequest", "id": "request-123",
                               "medicationCodeableConcept": concept},
    resources,
    st.just({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "10324"}]})
    | json_values,
)
drafts = st.lists(st.fixed_dictionaries({"resource": drafted | resources}, optional={"fullUrl": json_values}),
                  max_size=3)


@FUZZ
@given(entries=drafts, prefetch=prefetches)
def test_order_select_with_arbitrary_drafts_is_never_a_500(app_client, entries, prefetch):
    body = {
        "hook": "order-select", "hookInstance": "fuzz", "prefetch": prefetch,
        "fhirServer": "https://fhir.example.org/r4",
        "context": _context("pat-1", {"selections": [SELECTED],
                                      "draftOrders": {"resourceType": "Bundle", "entry": entries}}),
    }
    response = app_client.post("/cds-services/aimss-order-select", json=body)
    assert response.status_code in (200, 400, 412), response.text[:300]
