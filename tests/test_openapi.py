"""The OpenAPI document says every answer of every route, with the OperationOutcome schema of
the problems; real answers of each kind are among the documented ones. No page loads a CDN."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.web.openapi import OperationOutcome
from tests.helpers import patient_view
from tests.signing import bearer, write_issuers_file

PV = "/cds-services/aimss-patient-view"
DOCUMENTED = {
    ("/cds-services", "get"): {"200", "401", "500", "503"},
    ("/cds-services/{service_id}", "post"): {"200", "400", "401", "404", "412", "413", "500", "503"},
    ("/cds-services/{service_id}/feedback", "post"): {"200", "400", "401", "404", "413", "500", "503"},
    ("/health", "get"): {"200"},
    ("/ready", "get"): {"200", "503"},
    ("/metrics", "get"): {"200"},
}


@pytest.fixture
def api(make_client, tmp_path):
    return make_client(
        auth_disabled=False, trusted_issuers_file=write_issuers_file(tmp_path), docs_enabled=True
    )


@pytest.fixture
def schema(api) -> dict[str, Any]:
    return api.get("/openapi.json").json()


def test_every_route_documents_every_answer_and_no_422(schema):
    found = {(path, method): set(operation["responses"])
             for path, operations in schema["paths"].items() for method, operation in operations.items()}
    assert found == DOCUMENTED
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_problems_are_operation_outcomes_and_the_401_has_no_body(schema):
    for operations in schema["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status in {"400", "404", "412", "500", "503"}:
                    body = response["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/OperationOutcome"}, status
                if status == "401":
                    assert "content" not in response and "log" in response["description"]


def documented(schema: dict[str, Any], path: str, method: str) -> set[int]:
    return {int(status) for status in schema["paths"][path][method]["responses"]}


def test_real_answers_are_documented_ones_with_their_schema(api, schema):
    hook = ("/cds-services/{service_id}", "post")
    answers = [
        (hook, api.post(PV, json=patient_view(), headers=bearer(PV)), 412),  # no FHIR server
        (hook, api.post(PV, json={"hook": "patient-view"}, headers=bearer(PV)), 400),
        (hook, api.post(PV, json=patient_view()), 401),
        (hook, api.post("/cds-services/nope", json=patient_view(), headers=bearer("/cds-services/nope")), 404),
        (("/cds-services/{service_id}/feedback", "post"),
         api.post(PV + "/feedback", json={"feedback": "x"}, headers=bearer(PV + "/feedback")), 400),
        (("/cds-services", "get"), api.get("/cds-services"), 401),
    ]
    for (path, method), response, status in answers:
        assert response.status_code == status, (path, response.text)
        assert status in documented(schema, path, method)
        if status != 401:
            OperationOutcome.model_validate(response.json())
        else:
            assert response.content == b""


def test_no_page_loads_scripts_from_a_cdn(api):
    assert api.get("/docs").status_code == 404
    assert api.get("/redoc").status_code == 404
