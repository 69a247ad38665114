"""order-sign: every draft being signed checked with the safety topics, as real clients call it.

Request shapes are those of the public sandbox's Rx Sign screen and of an EHR signing an order
set (``tests/order_requests.py``); the chart comes as prefetch, so these tests need no FHIR
server, and a closed port as ``fhirServer`` proves that nothing else is read.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cds_service.settings import default_profiles_dir
from cds_service.store import Database
from cds_service.store.schema import order_card_drafts
from tests.conftest import TODAY
from tests.helpers import assert_valid_cards, order_select, topics
from tests.order_requests import (
    RXNORM,
    ehr_draft,
    ehr_order_sign,
    sandbox_order_sign,
    sandbox_rx_draft,
    sandbox_rx_draft_without_drug,
)

SIGN = "/cds-services/aimss-order-sign"
SELECT = "/cds-services/aimss-order-select"
CLOSED_PORT_FHIR = "http://127.0.0.1:9/fhir"
SELECT_CHART_KEYS = ("dxaObservations", "dxaProcedures", "dxaReports", "painObservations", "bpiResponses",
                     "conditions")
"""order-select's prefetch keys besides the medications: DXA (a baseline at AI start), pain, BPI
and conditions (what to expect from analgesics)."""
SAFETY_TOPICS = {
    "serm-with-ai", "estrogen-with-ai", "tamoxifen-cyp2d6", "serotonergic-interaction", "ai-with-tamoxifen",
}

# RxNorm products (../shared/reference/rxnorm-subset.tsv)
ANASTROZOLE = ("199224", "anastrozole 1 MG Oral Tablet")
LETROZOLE = ("200064", "letrozole 2.5 MG Oral Tablet")
TAMOXIFEN_10 = ("198240", "tamoxifen 10 MG Oral Tablet")
RALOXIFENE = ("1490065", "raloxifene hydrochloride 60 MG Oral Tablet")
ESTRADIOL = ("197658", "estradiol 1 MG Oral Tablet")
DULOXETINE = ("596930", "duloxetine 30 MG Delayed Release Oral Capsule")
PHENELZINE = ("312347", "phenelzine 15 MG Oral Tablet")
LINEZOLID = ("311347", "linezolid 600 MG Oral Tablet")
TRAMADOL = ("835603", "tramadol hydrochloride 50 MG Oral Tablet")
PAROXETINE = ("1738495", "paroxetine hydrochloride 20 MG Oral Tablet")
IBUPROFEN = ("197806", "ibuprofen 600 MG Oral Tablet")


def on(code: tuple[str, str], rid: str, *, start: str = "2026-03-01", end: str | None = None,
       status: str = "active", patient: str = "pat-1") -> dict[str, Any]:
    """A MedicationStatement of the chart."""
    period = {"start": start} | ({"end": end} if end else {})
    return {
        "resourceType": "MedicationStatement", "id": rid, "status": status,
        "subject": {"reference": f"Patient/{patient}"}, "effectivePeriod": period,
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code[0], "display": code[1]}]},
    }


def medications(*statements: dict[str, Any]) -> dict[str, Any]:
    """order-sign's whole prefetch: the medication keys."""
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": s} for s in statements]}
    return {"medicationStatements": bundle, "medicationRequests": None}


def sign(client, draft_code: tuple[str, str], *chart: dict[str, Any]) -> dict[str, Any]:
    body = sandbox_order_sign(sandbox_rx_draft(*draft_code), prefetch=medications(*chart),
                              fhirServer=CLOSED_PORT_FHIR)
    response = client.post(SIGN, json=body)
    assert response.status_code == 200, response.text
    assert_valid_cards(response.json())
    return response.json()


def chart_name(code: tuple[str, str]) -> str:
    """How a card names a drug on the chart: its name before the strength."""
    return re.split(r"\s+\d", code[1], maxsplit=1)[0]


def card_of(body: dict[str, Any], topic: str) -> dict[str, Any]:
    (card,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == topic]
    return card


# ---- discovery ------------------------------------------------------------------------------


def test_discovery_lists_three_services_each_saying_its_hook_and_data(client):
    services = {s["id"]: s for s in client.get("/cds-services").json()["services"]}
    assert {i: s["hook"] for i, s in services.items()} == {
        "aimss-patient-view": "patient-view",
        "aimss-order-select": "order-select",
        "aimss-order-sign": "order-sign",
    }
    for service in services.values():
        assert f"`{service['hook']}`" in service["usageRequirements"]
    assert "MedicationStatement" in services["aimss-order-sign"]["usageRequirements"]


def test_order_time_prefetch_asks_only_for_what_its_rules_read(client):
    services = {s["id"]: s for s in client.get("/cds-services").json()["services"]}
    assert set(services["aimss-order-sign"]["prefetch"]) == {"medicationStatements", "medicationRequests"}
    select = services["aimss-order-select"]["prefetch"]
    assert {"medicationStatements", "medicationRequests", *SELECT_CHART_KEYS} == set(select)
    assert set(services["aimss-patient-view"]["prefetch"]) > set(select)


# ---- the public sandbox's Rx Sign -----------------------------------------------------------


def test_rx_sign_of_a_serm_for_a_patient_on_an_ai_names_the_drug_and_offers_separate_suggestions(client):
    body = sign(client, RALOXIFENE, on(ANASTROZOLE, "ms-ai"))
    card = card_of(body, "serm-with-ai")
    assert card["indicator"] == "critical"
    assert "raloxifene hydrochloride 60 MG Oral Tablet" in card["detail"]
    assert "request-123" not in card["detail"] + card["summary"]
    remove, alternative = card["suggestions"]
    assert remove["label"] == "Remove the draft"
    assert remove["actions"] == [{"type": "delete", "description": remove["actions"][0]["description"],
                                  "resourceId": "MedicationRequest/request-123"}]
    assert alternative["label"].startswith("Order ") and alternative["label"].endswith(" instead")
    (create,) = alternative["actions"]
    assert create["type"] == "create" and create["resource"]["subject"] == {"reference": "Patient/pat-1"}
    assert card["selectionBehavior"] == "at-most-one"


def test_rx_sign_without_a_drug_gets_no_cards_without_reading_the_chart(client):
    body = sandbox_order_sign(sandbox_rx_draft_without_drug(), fhirServer=CLOSED_PORT_FHIR)
    response = client.post(SIGN, json=body)
    assert (response.status_code, response.json()) == (200, {"cards": []})


def test_rx_sign_of_a_drug_no_safety_rule_reads_does_not_read_the_chart(client):
    """Ibuprofen only has order-select advice: at signing there is nothing to check."""
    body = sandbox_order_sign(sandbox_rx_draft(*IBUPROFEN), fhirServer=CLOSED_PORT_FHIR)
    response = client.post(SIGN, json=body)
    assert (response.status_code, response.json()) == (200, {"cards": []})


def test_rx_sign_with_the_medications_unobtainable_is_412(client):
    body = sandbox_order_sign(sandbox_rx_draft(*RALOXIFENE), fhirServer=CLOSED_PORT_FHIR)
    response = client.post(SIGN, json=body)
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("context", [
    {"patientId": "pat-1", "userId": "Practitioner/COREPRACTITIONER1"},
    {"patientId": "pat-1", "userId": "Practitioner/COREPRACTITIONER1", "draftOrders": {"entry": []}},
    {"patientId": "pat-1", "userId": "Practitioner/COREPRACTITIONER1", "draftOrders": []},
])
def test_order_sign_without_a_draft_orders_bundle_is_malformed(client, context):
    body = {"hookInstance": "x", "hook": "order-sign", "context": context}
    response = client.post(SIGN, json=body)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_order_select_body_is_not_an_order_sign_call(client):
    response = client.post(SIGN, json=order_select(sandbox_rx_draft(*RALOXIFENE)))
    assert response.status_code == 400


# ---- each safety topic, each direction --------------------------------------------------------


@pytest.mark.parametrize("topic, indicator, draft, chart", [
    ("serm-with-ai", "critical", RALOXIFENE, [ANASTROZOLE]),
    ("estrogen-with-ai", "critical", ESTRADIOL, [LETROZOLE]),
    ("tamoxifen-cyp2d6", "warning", TAMOXIFEN_10, [PAROXETINE]),
    ("tamoxifen-cyp2d6", "warning", PAROXETINE, [TAMOXIFEN_10]),
    ("serotonergic-interaction", "critical", DULOXETINE, [PHENELZINE]),
    ("serotonergic-interaction", "critical", DULOXETINE, [LINEZOLID]),
    ("serotonergic-interaction", "warning", DULOXETINE, [TRAMADOL]),
    ("serotonergic-interaction", "critical", PHENELZINE, [DULOXETINE]),
    ("ai-with-tamoxifen", "warning", TAMOXIFEN_10, [ANASTROZOLE]),
    ("ai-with-tamoxifen", "warning", LETROZOLE, [TAMOXIFEN_10]),
])
def test_each_safety_topic_fires_at_signing(client, topic, indicator, draft, chart):
    body = sign(client, draft, *(on(code, f"ms-{i}") for i, code in enumerate(chart)))
    card = card_of(body, topic)
    assert card["indicator"] == indicator
    assert draft[1] in card["detail"], "the card names the drafted drug"
    for code in chart:
        assert chart_name(code) in card["detail"], "and the drug on the chart"


def test_no_safety_card_without_the_other_drug_on_the_chart(client):
    for draft in (RALOXIFENE, ESTRADIOL, TAMOXIFEN_10, DULOXETINE, LETROZOLE):
        assert sign(client, draft) == {"cards": []}, draft


def test_advice_only_drafts_get_no_card_at_signing(client):
    """An AI started with no DXA, and an analgesic for AIMSS: advice at order-select, none at signing."""
    assert sign(client, LETROZOLE) == {"cards": []}
    assert sign(client, IBUPROFEN, on(ANASTROZOLE, "ms-ai")) == {"cards": []}
    select = client.post(SELECT, json=order_select(
        sandbox_rx_draft(*LETROZOLE), prefetch=medications() | dict.fromkeys(
            SELECT_CHART_KEYS)))
    assert topics(select.json()) == {"ai-start-bone-health"}


# ---- duloxetine after an MAOI, and every serotonergic drug on the chart -----------------------


@pytest.mark.parametrize("days_since_stop, critical", [(13, True), (14, False), (15, False)])
def test_duloxetine_within_14_days_of_stopping_an_maoi(client, days_since_stop, critical):
    """The check every duloxetine card keeps ([duloxetine-safety] washout_days, 14): the label's
    "at least 14 days" after the MAOI's end date, so day 14 is allowed, as at patient-view."""
    stopped = (TODAY - timedelta(days=days_since_stop)).isoformat()
    body = sign(client, DULOXETINE, on(PHENELZINE, "ms-maoi", start="2025-01-01", end=stopped, status="completed"))
    if critical:
        card = card_of(body, "serotonergic-interaction")
        assert card["indicator"] == "critical"
        assert f"phenelzine (completed {stopped})" in card["detail"]
        assert [s["label"] for s in card["suggestions"]] == ["Remove the draft"]
    else:
        assert body == {"cards": []}


def test_an_maoi_stopped_without_an_end_date_still_counts(client):
    body = sign(client, DULOXETINE, on(PHENELZINE, "ms-maoi", start="2025-01-01", status="stopped"))
    assert card_of(body, "serotonergic-interaction")["indicator"] == "critical"


def test_an_maoi_drafted_within_5_days_of_stopping_duloxetine(client):
    stopped = (TODAY - timedelta(days=4)).isoformat()
    body = sign(client, PHENELZINE, on(DULOXETINE, "ms-dlx", start="2026-01-01", end=stopped, status="completed"))
    card = card_of(body, "serotonergic-interaction")
    assert card["indicator"] == "critical" and "5 days after stopping duloxetine" in card["detail"]
    stopped = (TODAY - timedelta(days=6)).isoformat()
    assert sign(client, PHENELZINE, on(DULOXETINE, "ms-dlx", start="2026-01-01", end=stopped,
                                        status="completed")) == {"cards": []}


def test_the_serotonergic_card_names_every_serotonergic_drug_on_the_chart(client):
    body = sign(client, DULOXETINE, on(PHENELZINE, "ms-1"), on(TRAMADOL, "ms-2"), on(PAROXETINE, "ms-3"))
    card = card_of(body, "serotonergic-interaction")
    assert card["indicator"] == "critical"
    for drug in (PHENELZINE, TRAMADOL, PAROXETINE):
        assert chart_name(drug) in card["detail"]


# ---- an EHR's order set: one card per (topic, draft) -------------------------------------------


def test_a_two_draft_order_set_gets_one_card_per_topic_and_draft(client):
    drafts = [
        ehr_draft("mr-101", [RALOXIFENE, ("72143", "raloxifene")], "Raloxifene 60 mg tablet"),
        ehr_draft("mr-102", [DULOXETINE], "Duloxetine 30 mg capsule"),
    ]
    chart = medications(on(ANASTROZOLE, "ms-ai"), on(PHENELZINE, "ms-maoi"))
    response = client.post(SIGN, json=ehr_order_sign(drafts, prefetch=chart, fhirServer=CLOSED_PORT_FHIR))
    assert response.status_code == 200
    body = response.json()
    assert_valid_cards(body)
    assert [c["source"]["topic"]["code"] for c in body["cards"]] == ["serm-with-ai", "serotonergic-interaction"]
    serm, serotonergic = body["cards"]
    assert "Raloxifene 60 mg tablet" in serm["detail"] and "Duloxetine" not in serm["detail"]
    assert "Duloxetine 30 mg capsule" in serotonergic["detail"]
    (remove,) = [s for s in serotonergic["suggestions"] if s["label"] == "Remove the draft"]
    assert remove["actions"][0]["resourceId"] == "MedicationRequest/mr-102"


def test_two_drafts_of_one_topic_get_a_card_each(client):
    drafts = [
        ehr_draft("mr-201", [RALOXIFENE], "Raloxifene 60 mg tablet"),
        ehr_draft("mr-202", [ESTRADIOL], "Estradiol 1 mg tablet"),
        ehr_draft("mr-203", [RALOXIFENE], "Raloxifene 60 mg tablet (second)"),
    ]
    response = client.post(SIGN, json=ehr_order_sign(drafts, prefetch=medications(on(ANASTROZOLE, "ms-ai"))))
    cards = response.json()["cards"]
    assert sorted(c["source"]["topic"]["code"] for c in cards) == ["estrogen-with-ai", "serm-with-ai", "serm-with-ai"]
    removed = {s["actions"][0]["resourceId"] for c in cards for s in c["suggestions"] if s["label"] == "Remove the draft"}
    assert removed == {"MedicationRequest/mr-201", "MedicationRequest/mr-202", "MedicationRequest/mr-203"}


# ---- no repeat at signing of a card overridden at order-select ---------------------------------

SELECTED_AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def override(client, service_path: str, card: dict[str, Any], code: str | None) -> None:
    item: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden",
                            "outcomeTimestamp": "2026-11-21T09:00:05Z"}
    if code:
        item["overrideReason"] = {"reason": {"system": "http://example.org/override", "code": code}}
    assert client.post(f"{service_path}/feedback", json={"feedback": [item]}).status_code == 200


def select_then_sign(make_client, hours_later: float, reason: str | None = "not-relevant",
                     sign_draft: tuple[str, str] = RALOXIFENE, sign_patient: str = "pat-1") -> dict[str, Any]:
    now = [SELECTED_AT]
    client = make_client(now=lambda: now[0])
    chart = medications(on(ANASTROZOLE, "ms-ai"))
    selected = client.post(SELECT, json=order_select(sandbox_rx_draft(*RALOXIFENE), prefetch=chart
                                                      | dict.fromkeys(SELECT_CHART_KEYS)))
    override(client, SELECT, card_of(selected.json(), "serm-with-ai"), reason)
    now[0] = SELECTED_AT + timedelta(hours=hours_later)
    body = sandbox_order_sign(sandbox_rx_draft(*sign_draft, patient_id=sign_patient), patient_id=sign_patient,
                              prefetch=medications(on(ANASTROZOLE, "ms-ai", patient=sign_patient)))
    response = client.post(SIGN, json=body)
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("hours_later, repeated", [(0.1, False), (11.9, False), (12.1, True)])
def test_a_card_overridden_with_a_reason_at_order_select_is_not_repeated_within_the_session(
    make_client, hours_later, repeated
):
    body = select_then_sign(make_client, hours_later)
    assert ("serm-with-ai" in topics(body)) is repeated


def test_a_plain_dismiss_without_a_reason_does_not_stop_the_card_at_signing(make_client):
    assert "serm-with-ai" in topics(select_then_sign(make_client, 1, reason=None))


def test_another_patient_still_gets_the_card_at_signing(make_client):
    assert "serm-with-ai" in topics(select_then_sign(make_client, 1, sign_patient="pat-2"))


def test_the_same_draft_id_with_another_drug_is_another_draft(make_client):
    """The public sandbox gives every draft the id request-123: a new drug is a new draft."""
    duavee = ("1441392", "bazedoxifene 20 MG / estrogens, conjugated (USP) 0.45 MG Oral Tablet")
    body = select_then_sign(make_client, 1, sign_draft=duavee)
    assert [c["source"]["topic"]["code"] for c in body["cards"]] == ["serm-with-ai"]


def test_both_hooks_record_their_cards_with_the_draft_and_the_hook(make_client, tmp_path):
    database_url = f"sqlite:///{tmp_path}/records.db"
    client = make_client(database_url=database_url)
    chart = medications(on(ANASTROZOLE, "ms-ai"))
    select_prefetch = chart | dict.fromkeys(SELECT_CHART_KEYS)
    selected = client.post(SELECT, json=order_select(sandbox_rx_draft(*RALOXIFENE), prefetch=select_prefetch))
    signed = client.post(SIGN, json=sandbox_order_sign(sandbox_rx_draft(*RALOXIFENE), prefetch=chart))
    client.post(f"{SIGN}/feedback", json={"feedback": [{
        "card": card_of(signed.json(), "serm-with-ai")["uuid"], "outcome": "overridden",
        "outcomeTimestamp": "2026-11-21T12:00:00Z"}]})  # flushes the recorder

    database = Database(database_url)
    try:
        with database.fast.connect() as connection:
            rows = [row._asdict() for row in connection.execute(select(order_card_drafts))]
    finally:
        database.close()
    assert {row["card_uuid"]: row["hook"] for row in rows} == {
        card_of(selected.json(), "serm-with-ai")["uuid"]: "order-select",
        card_of(signed.json(), "serm-with-ai")["uuid"]: "order-sign",
    }
    assert len({row["draft_key"] for row in rows}) == 1
    assert all("request-123" not in str(row.values()) for row in rows), "draft ids are stored hashed"


def test_bazedoxifene_with_conjugated_estrogens_is_one_serm_card(client):
    duavee = ("1441392", "bazedoxifene 20 MG / estrogens, conjugated (USP) 0.45 MG Oral Tablet")
    body = sign(client, duavee, on(ANASTROZOLE, "ms-ai"))
    assert [c["source"]["topic"]["code"] for c in body["cards"]] == ["serm-with-ai"]


# ---- vaginal estrogen: advice at order-select, nothing at signing -------------------------------

ESTRADIOL_INGREDIENT = ("4083", "estradiol")
VAGINAL = [("310169", "estradiol 0.1 MG/ML Vaginal Cream"), ("884709", "estradiol 0.01 MG Vaginal Insert [Vagifem]")]


@pytest.fixture
def vaginal_client(make_client, tmp_path):
    """The shipped knowledge, plus a vaginal-estrogens ValueSet of the two products and an
    estrogens-route-unknown one of the estradiol ingredient where the shipped knowledge has none
    (codes from ../shared/reference/rxnorm-subset.tsv and clinical-codes.tsv)."""
    profiles = tmp_path / "profiles"
    shutil.copytree(default_profiles_dir(), profiles)
    for name, products in (("vaginal-estrogens", VAGINAL), ("estrogens-route-unknown", [ESTRADIOL_INGREDIENT])):
        shipped = profiles / f"ValueSet-{name}.json"
        if not shipped.exists():
            shipped.write_text(json.dumps({
                "resourceType": "ValueSet", "id": name, "status": "draft",
                "url": f"http://aimss-cds.example.org/fhir/ValueSet/{name}",
                "compose": {"include": [{"system": RXNORM, "concept": [
                    {"code": code, "display": display} for code, display in products]}]},
            }))
    return make_client(profiles_dir=profiles)


@pytest.mark.parametrize("product", VAGINAL, ids=["generic cream", "Vagifem"])
def test_vaginal_estrogen_is_advice_at_order_select_and_no_card_at_signing(vaginal_client, product):
    chart = medications(on(ANASTROZOLE, "ms-ai"))
    selected = vaginal_client.post(SELECT, json=order_select(sandbox_rx_draft(*product), prefetch=chart | dict.fromkeys(
        SELECT_CHART_KEYS)))
    card = card_of(selected.json(), "estrogen-with-ai")
    assert card["indicator"] == "info" and "oncology" in card["detail"]
    assert "suggestions" not in card, "never a 'remove' card"
    assert sign(vaginal_client, product, on(ANASTROZOLE, "ms-ai")) == {"cards": []}


def test_an_estrogen_code_that_does_not_tell_the_route_is_a_warning_at_both_hooks(vaginal_client):
    body = sign(vaginal_client, ESTRADIOL_INGREDIENT, on(ANASTROZOLE, "ms-ai"))
    card = card_of(body, "estrogen-with-ai")
    assert card["indicator"] == "warning"
    assert "does not say whether it is systemic or vaginal" in card["detail"]
    assert [s["label"] for s in card["suggestions"]] == ["Remove the draft"]


# ---- every drug group, brand and generic (RxNorm SBD and SCD of ../shared/reference/rxnorm-subset.tsv)

EVISTA = ("1490067", "raloxifene hydrochloride 60 MG Oral Tablet [Evista]")
DUAVEE = ("1441740", "bazedoxifene 20 MG / estrogens, conjugated (USP) 0.45 MG Oral Tablet [Duavee]")
PREMARIN = ("150840", "estrogens, conjugated (USP) 0.625 MG Oral Tablet [Premarin]")
CONJUGATED_ESTROGENS = ("310197", "estrogens, conjugated (USP) 0.625 MG Oral Tablet")
TAMOXIFEN_20 = ("313195", "tamoxifen 20 MG Oral Tablet")
SOLTAMOX = ("644304", "tamoxifen 2 MG/ML Oral Solution [Soltamox]")
PAXIL = ("207349", "paroxetine hydrochloride 20 MG Oral Tablet [Paxil]")
CYMBALTA = ("596932", "duloxetine 30 MG Delayed Release Oral Capsule [Cymbalta]")
NARDIL = ("104836", "phenelzine 15 MG Oral Tablet [Nardil]")
ZOLOFT = ("208161", "sertraline 50 MG Oral Tablet [Zoloft]")
SERTRALINE = ("312941", "sertraline 50 MG Oral Tablet")
FEMARA = ("153124", "letrozole 2.5 MG Oral Tablet [Femara]")
AROMASIN = ("261317", "exemestane 25 MG Oral Tablet [Aromasin]")


@pytest.mark.parametrize("topic, indicator, draft, chart", [
    ("serm-with-ai", "critical", EVISTA, [FEMARA]),
    ("serm-with-ai", "critical", RALOXIFENE, [AROMASIN]),
    ("serm-with-ai", "critical", DUAVEE, [ANASTROZOLE]),
    ("estrogen-with-ai", "critical", PREMARIN, [ANASTROZOLE]),
    ("estrogen-with-ai", "critical", CONJUGATED_ESTROGENS, [FEMARA]),
    ("tamoxifen-cyp2d6", "warning", TAMOXIFEN_20, [PAROXETINE]),
    ("tamoxifen-cyp2d6", "warning", SOLTAMOX, [PAXIL]),
    ("tamoxifen-cyp2d6", "warning", PAXIL, [TAMOXIFEN_20]),
    ("serotonergic-interaction", "critical", CYMBALTA, [NARDIL]),
    ("serotonergic-interaction", "warning", CYMBALTA, [ZOLOFT]),
    ("serotonergic-interaction", "warning", DULOXETINE, [SERTRALINE]),
    ("serotonergic-interaction", "critical", NARDIL, [CYMBALTA]),
    ("ai-with-tamoxifen", "warning", TAMOXIFEN_20, [FEMARA]),
    ("ai-with-tamoxifen", "warning", SOLTAMOX, [AROMASIN]),
    ("ai-with-tamoxifen", "warning", FEMARA, [TAMOXIFEN_20]),
    ("ai-with-tamoxifen", "warning", AROMASIN, [SOLTAMOX]),
], ids=lambda value: value[1] if isinstance(value, tuple) else None)
def test_each_safety_topic_fires_at_signing_for_brand_and_generic_products(client, topic, indicator, draft, chart):
    body = sign(client, draft, *(on(code, f"ms-{i}") for i, code in enumerate(chart)))
    card = card_of(body, topic)
    assert card["indicator"] == indicator
    assert draft[1] in card["detail"] and all(chart_name(code) in card["detail"] for code in chart)



def test_order_select_reads_a_dxa_known_only_from_its_report(client):
    """ai-start-bone-health reads every kind of DXA record, so order-select's prefetch asks for
    reports too (shape from tests/corpus/dxa-report-only.json)."""
    report = {
        "resourceType": "DiagnosticReport", "id": "dr-dxa", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "83311-1",
                             "display": "DXA Bone density quantitative measurement panel"}]},
        "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": "2026-05-21T10:02:00-07:00",
    }
    prefetch = medications() | dict.fromkeys(SELECT_CHART_KEYS)
    assert topics(client.post(SELECT, json=order_select(sandbox_rx_draft(*LETROZOLE), prefetch=prefetch)).json()) == {
        "ai-start-bone-health"}
    prefetch["dxaReports"] = {"resourceType": "Bundle", "entry": [{"resource": report}]}
    assert client.post(SELECT, json=order_select(sandbox_rx_draft(*LETROZOLE), prefetch=prefetch)).json() == {
        "cards": []}
