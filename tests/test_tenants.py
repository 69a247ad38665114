"""Two EHRs (two issuers, two tenants) on one service, against the real FHIR server: rollout
modes end to end, and one tenant's feedback never quieting another's cards (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.knowledge.loader import OVERRIDE_SYSTEM
from sandbox.synthetic import sandbox_patients
from tests.conftest import ROOT, TODAY, post_transaction
from tests.helpers import assert_valid_cards, patient_view, topics
from tests.signing import ISSUER, ISSUER_B, bearer, issuer_entry, write_issuers_file

VIEW = "/cds-services/aimss-patient-view"
PATIENTS = {patient.id: patient for patient in sandbox_patients(TODAY)}
PATIENT = "aimss-mild"  # analgesic-expectations and exercise: neither critical, both snoozable
EXPECTED = PATIENTS[PATIENT].expected


@pytest.fixture(scope="module")
def loaded_fhir(fhir_server: str) -> str:
    post_transaction(fhir_server, PATIENTS[PATIENT].transaction())
    return fhir_server


@pytest.fixture
def two_ehrs(make_client: Callable[..., TestClient], tmp_path: Path) -> Callable[..., TestClient]:
    """The service trusting ISSUER and ISSUER_B, each with the tenant fields given."""

    def make(a: dict[str, Any], b: dict[str, Any]) -> TestClient:
        issuers = write_issuers_file(tmp_path, issuer_entry(ISSUER, **a), issuer_entry(ISSUER_B, **b))
        return make_client(
            auth_disabled=False, trusted_issuers_file=issuers, database_url=f"sqlite:///{tmp_path}/aimss.db"
        )

    return make


def call(client: TestClient, fhir: str, iss: str, user: str = "Practitioner/COREPRACTITIONER1") -> dict:
    body = patient_view(PATIENT, fhirServer=fhir)
    body["context"]["userId"] = user
    response = client.post(VIEW, json=body, headers=bearer(VIEW, iss=iss))
    assert response.status_code == 200, response.text
    assert_valid_cards(response.json())
    return response.json()


def report(tmp_path: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """``aimss-cds report --json``: (issued, silent) per recommendation, per tenant."""
    env = os.environ | {"AIMSS_DATABASE_URL": f"sqlite:///{tmp_path}/aimss.db"}
    run = subprocess.run([sys.executable, "-m", "cds_service", "report", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return {
        tenant["tenant"]: {
            row["topic"]: (row["issued"], row["silent"]) for row in tenant["recommendations"]
        }
        for tenant in json.loads(run.stdout)["tenants"]
    }


def test_a_silent_tenant_gets_no_cards_and_the_report_shows_what_would_have_fired(
    two_ehrs, loaded_fhir, tmp_path
):
    client = two_ehrs({"mode": "silent"}, {})
    assert call(client, loaded_fhir, ISSUER) == {"cards": []}
    assert topics(call(client, loaded_fhir, ISSUER_B)) == EXPECTED
    client.__exit__(None, None, None)  # shutdown writes the last batch of issued cards
    assert report(tmp_path) == {
        ISSUER: {topic: (0, 1) for topic in EXPECTED},
        ISSUER_B: {topic: (1, 0) for topic in EXPECTED},
    }


def test_in_users_mode_only_the_listed_users_get_cards(two_ehrs, loaded_fhir, tmp_path):
    client = two_ehrs({"mode": "users", "users": ["Practitioner/alice"]}, {"mode": "silent"})
    assert topics(call(client, loaded_fhir, ISSUER, user="Practitioner/alice")) == EXPECTED
    assert call(client, loaded_fhir, ISSUER, user="Practitioner/bob") == {"cards": []}
    assert call(client, loaded_fhir, ISSUER_B, user="Practitioner/alice") == {"cards": []}
    client.__exit__(None, None, None)
    assert report(tmp_path) == {
        ISSUER: {topic: (1, 1) for topic in EXPECTED},
        ISSUER_B: {topic: (0, 1) for topic in EXPECTED},
    }


def not_now(card_uuid: str) -> dict[str, Any]:
    return {"card": card_uuid, "outcome": "overridden", "outcomeTimestamp": "2026-11-21T13:29:01Z",
            "overrideReason": {"reason": {"system": OVERRIDE_SYSTEM, "code": "not-now"}}}


def test_one_ehr_cannot_quiet_anothers_cards(two_ehrs, loaded_fhir):
    """The review (high): issuer B, sending A's fhirServer and patient id and then "not now"
    feedback, quieted A's cards for that patient for 30 days."""
    client = two_ehrs({}, {})
    a_cards = call(client, loaded_fhir, ISSUER)["cards"]
    b_cards = call(client, loaded_fhir, ISSUER_B)["cards"]
    feedback = VIEW + "/feedback"
    # B overrides its own cards and, having learned them, A's.
    everything = [not_now(card["uuid"]) for card in [*a_cards, *b_cards]]
    answer = client.post(feedback, json={"feedback": everything}, headers=bearer(feedback, iss=ISSUER_B))
    assert answer.status_code == 200
    assert topics(call(client, loaded_fhir, ISSUER_B)) == set(), "B quieted its own cards"
    assert topics(call(client, loaded_fhir, ISSUER)) == EXPECTED, "and none of A's"
