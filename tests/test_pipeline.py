"""The hook pipeline: malformed client data is a 400 or "unavailable"; a bug is a counted 500."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from cds_service.clinical import cards
from cds_service.clinical.facts.model import PatientFacts
from cds_service.clinical.rules import patient_view as patient_view_rules
from cds_service.fhir.gather import Gathered
from cds_service.hooks.intake import read_facts
from cds_service.hooks.services import PATIENT_VIEW, build_services
from cds_service.knowledge.loader import Knowledge
from tests.conftest import TODAY
from tests.helpers import patient_view
from tests.test_conformance import ANASTROZOLE, WRONGLY_TYPED, bundle_of, full_prefetch

URL = "/cds-services/aimss-patient-view"
SECRET = "Jane Doe 1961-04-02"


def internal_errors(stage: str) -> float:
    return REGISTRY.get_sample_value("aimss_internal_errors_total", {"stage": stage}) or 0.0


def broken_rule(facts: PatientFacts, knowledge: Knowledge) -> None:
    raise ValueError(f"patient {SECRET}")  # a bug whose message quotes patient data


@pytest.mark.parametrize("stage", ["rules", "cards"])
def test_a_bug_after_the_facts_is_a_500_logged_without_its_message_and_counted(
    client, monkeypatch, caplog, stage
):
    if stage == "rules":
        monkeypatch.setattr(patient_view_rules, "PATIENT_VIEW_RULES", (broken_rule,))
    else:
        monkeypatch.setattr(cards._Writer, "card", lambda *args: broken_rule(*args[:2]))
    before = internal_errors(stage)
    with caplog.at_level(logging.INFO, logger="aimss_cds"):
        response = client.post(URL, json=patient_view(prefetch=full_prefetch(ANASTROZOLE)))
    assert response.status_code == 500
    issue = response.json()["issue"][0]
    assert response.json()["resourceType"] == "OperationOutcome"
    assert issue["code"] == "exception"
    assert SECRET not in response.text
    assert internal_errors(stage) == before + 1
    (bug,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"bug in step {stage} of {PATIENT_VIEW}: ValueError" in bug
    assert "in broken_rule" in bug  # the traceback's frames
    assert SECRET not in caplog.text
    assert any("status=500" in r.getMessage() for r in caplog.records)


def test_a_wrongly_typed_resource_makes_its_key_unavailable_not_a_500(client, caplog):
    prefetch = full_prefetch(ANASTROZOLE) | {"bpiResponses": bundle_of(WRONGLY_TYPED["BPI item a number"])}
    before = internal_errors("facts")
    with caplog.at_level(logging.INFO, logger="aimss_cds"):
        response = client.post(URL, json=patient_view(prefetch=prefetch))
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert cards and all("Could not be read: pain and BPI scores" in c["detail"] for c in cards)
    assert any("bpiResponses:malformed_content" in r.getMessage() for r in caplog.records)
    assert internal_errors("facts") == before


def test_keys_that_fail_only_together_are_a_400(client):
    """A Medication included with the requests breaks the statement that points at it."""
    medication = {"resourceType": "Medication", "id": "m1", "ingredient": 5}
    statement = {**ANASTROZOLE, "medicationReference": {"reference": "Medication/m1"}}
    del statement["medicationCodeableConcept"]
    prefetch = full_prefetch(statement) | {"medicationRequests": bundle_of(medication)}
    response = client.post(URL, json=patient_view(prefetch=prefetch))
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "not valid FHIR R4 JSON" in response.json()["issue"][0]["diagnostics"]


def test_reading_the_facts_leaves_the_gathered_data_as_it_was(knowledge: Knowledge):
    resources: dict[str, list[dict[str, Any]]] = {
        "medicationStatements": [ANASTROZOLE],
        "bpiResponses": [WRONGLY_TYPED["BPI item a number"]],
    }
    gathered = Gathered(resources=resources, unavailable={"labObservations": "deadline"})
    snapshot = copy.deepcopy(gathered)
    service = build_services(knowledge)[PATIENT_VIEW]
    intake = read_facts(gathered, service, knowledge, TODAY)
    assert gathered == snapshot
    assert intake.unavailable == {"labObservations": "deadline", "bpiResponses": "malformed_content"}
    assert intake.facts.current_aromatase_inhibitors
