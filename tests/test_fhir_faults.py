"""End-to-end FHIR faults: hook calls through the service against a real misbehaving server.

Medications are the data the service needs, so a fault on MedicationStatement is a 412; a
fault on Observations (DXA, pain, labs) is a 200 whose cards say data was incomplete. Either
way the answer comes within the hook deadline plus a margin: never a 500, never a hang.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.faulty_fhir import FAULTS, FaultyFhir, faulty_fhir
from tests.helpers import assert_valid_cards, patient_view, topics

DEADLINE = 0.6
MARGIN = 1.0  # thread hand-offs and a loaded CI machine; a hang would take 30 s or forever

EXPECTED_REASON = {
    "slow": "deadline",
    "silent": "deadline",
    "http_503": "http_503",
    "http_401": "unauthorized",
    "bad_json": "malformed",
    "truncated": "connection_lost",
    "chunked_cut": "connection_lost",
    "huge": "too_large",
    "endless": "deadline",
    "next_loop": "paging_loop",
    "http_404": "http_404",
    "not_a_bundle": "not_a_bundle",
}


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyFhir]:
    with faulty_fhir() as running:
        yield running


@pytest.fixture
def service(make_client: Callable[..., TestClient]) -> TestClient:
    # The per-request timeout is longer than the deadline: the deadline alone must bound a call.
    return make_client(hook_deadline=DEADLINE, fhir_request_timeout=5.0)


def call_bounded(client: TestClient, body: dict) -> tuple[httpx.Response, float]:
    """POST a patient-view; a hang fails the test after a few seconds instead of blocking CI."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        response = pool.submit(client.post, "/cds-services/aimss-patient-view", json=body)
        answer = response.result(timeout=DEADLINE + 10)
        return answer, time.monotonic() - started


def test_every_fault_has_an_expected_reason() -> None:
    assert set(EXPECTED_REASON) == set(FAULTS)


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_on_medications_is_412_within_the_deadline(server, service, fault, caplog):
    body = patient_view("pat-fault", fhirServer=server.base(fault, "MedicationStatement"))
    with caplog.at_level(logging.INFO, logger="aimss_cds"):
        response, elapsed = call_bounded(service, body)
    assert response.status_code == 412, response.text
    assert elapsed < DEADLINE + MARGIN, elapsed
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert diagnostics.endswith(": medicationStatements"), "the key, not why: no port scanner"
    assert f"medicationStatements:{EXPECTED_REASON[fault]}" in caplog.text, "the reason is logged"


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_on_observations_is_a_data_incomplete_card_within_the_deadline(server, service, fault):
    body = patient_view("pat-fault", fhirServer=server.base(fault, "Observation"))
    response, elapsed = call_bounded(service, body)
    assert response.status_code == 200, response.text
    assert elapsed < DEADLINE + MARGIN, elapsed
    assert_valid_cards(response.json())
    found = topics(response.json())
    assert "data-incomplete" in found
    assert "bone-density-scan" not in found, "no DXA must not be concluded from a failed read"
    (card,) = [c for c in response.json()["cards"] if c["source"]["topic"]["code"] == "data-incomplete"]
    assert "bone density tests" in card["detail"]


def test_the_service_answers_normally_once_the_server_behaves(server, service):
    # The same server, faults on a type no key reads: the anastrozole patient gets real cards.
    body = patient_view("pat-fault", fhirServer=server.base("silent", "Nothing"))
    response, _elapsed = call_bounded(service, body)
    assert response.status_code == 200
    assert {"bone-density-scan"} <= topics(response.json())
    assert "data-incomplete" not in topics(response.json())
