"""Golden tests of issue 12 (patient-view): what a pharmacist and an oncologist must sign off.

Each test posts a patient-view hook with complete prefetch to the app, with the clock pinned to
TODAY, and reads the answer the way a clinician would: which recommendations it holds, what
its suggestions would order, and what its cards say. The reading is layout-independent: a
recommendation is a card's ``source.topic.code`` or one of the Codings a grouped card lists
under its ``org.example.aimss-cds.recommendations`` extension, and an order is the resource a
suggestion creates, wherever it sits.

Codes used here come from the project's references (clinical-codes.tsv, rxnorm-subset.tsv) or,
for ICD-10-CM codes not in them, from the CMS ICD-10-CM tabular list (PyPI simple-icd-10-cm),
and LOINC codes named at their use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient

from sandbox.synthetic import (
    ANASTROZOLE_1MG,
    BPI_INTERFERENCE,
    CALCIUM_CARBONATE,
    CHOLECALCIFEROL,
    DULOXETINE_30MG,
    DXA_FEMUR_T,
    ICD10,
    LETROZOLE_2_5MG,
    LOINC,
    PAIN_NRS,
    PHENELZINE_15MG,
    PHQ9,
    RXNORM,
    SNOMED,
    TSH,
    VITAMIN_D,
)
from tests.conftest import TODAY
from tests.helpers import assert_valid_cards, patient_view

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
RECOMMENDATIONS = "org.example.aimss-cds.recommendations"
PATIENT = "pat-safety"

Code = tuple[str, str]
Resource = dict[str, Any]

# RxNorm (rxnorm-subset.tsv unless noted)
LINEZOLID_600MG = ("311347", "linezolid 600 MG Oral Tablet")
SERTRALINE_50MG = ("312941", "sertraline 50 MG Oral Tablet")
WARFARIN = ("11289", "warfarin")  # RxNorm ingredient; VERIFIED-B (several independent code tables)
DENOSUMAB_60MG_PROLIA = ("993456", "1 ML denosumab 60 MG/ML Prefilled Syringe [Prolia]")
DULOXETINE_CODES = {"72625", "596926", "596930", "616402", "596934", "2200175", "2200181"}

# LOINC
# Cockcroft-Gault creatinine clearance (LOINC 35591-7), eGFR CKD-EPI 2021 (98979-8) and total
# serum calcium (17861-6): LOINC names as published in HL7 Switzerland's lab IG, the ANS (France)
# eGFR value set and several lab catalogues.
CRCL = ("35591-7", "Creatinine renal clearance predicted by Cockcroft-Gault formula")
EGFR = ("98979-8", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI 2021)")
SERUM_CALCIUM = ("17861-6", "Calcium [Mass/volume] in Serum or Plasma")

# Orderable bisphosphonate products (SCD/SBD rows of rxnorm-subset.tsv) and the creatinine
# clearance below which each label says not to use them: FOSAMAX / FOSAMAX PLUS D (alendronate)
# "not recommended for patients with creatinine clearance < 35 mL/min"; ACTONEL (risedronate) and
# BONIVA (ibandronate) "< 30 mL/min"; RECLAST (zoledronic acid 5 mg) contraindicated "< 35 mL/min".
BISPHOSPHONATE_PRODUCTS = {
    "904492": 35, "904462": 35, "904495": 35, "904465": 35,  # alendronate 70 mg (+ vitamin D3)
    "905024": 30, "905026": 30, "1020064": 30,  # risedronate 35 mg weekly
    "904932": 30, "904934": 30,  # ibandronate 150 mg monthly
    "705824": 35, "705875": 35,  # zoledronic acid 5 mg/100 mL yearly
}
BONE_AGENT_WORDS = ("alendron", "risedron", "ibandron", "zoledron", "denosumab", "prolia")

_ids = iter(range(1_000_000))


# --- chart builders ----------------------------------------------------------------------------


def rid() -> str:
    return f"s{next(_ids)}"


def days_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def months_ago(months: int) -> date:
    """The same day of the month ``months`` earlier (TODAY is the 21st: no month is too short)."""
    index = TODAY.year * 12 + TODAY.month - 1 - months
    return date(index // 12, index % 12 + 1, TODAY.day)


def concept(system: str, code: Code) -> Resource:
    return {"coding": [{"system": system, "code": code[0], "display": code[1]}], "text": code[1]}


def statement(code: Code, start: date | None = None, status: str = "active", end: date | None = None,
              **extra: Any) -> Resource:
    period = {k: v.isoformat() for k, v in (("start", start or months_ago(6)), ("end", end)) if v}
    return {"resourceType": "MedicationStatement", "id": rid(), "status": status,
            "subject": {"reference": f"Patient/{PATIENT}"},
            "medicationCodeableConcept": concept(RXNORM, code), "effectivePeriod": period, **extra}


def request(code: Code, authored: date, status: str = "active", **extra: Any) -> Resource:
    return {"resourceType": "MedicationRequest", "id": rid(), "status": status, "intent": "order",
            "subject": {"reference": f"Patient/{PATIENT}"},
            "medicationCodeableConcept": concept(RXNORM, code), "authoredOn": authored.isoformat(), **extra}


def observation(code: Code, when: date, value: float, unit: str, **extra: Any) -> Resource:
    return {"resourceType": "Observation", "id": rid(), "status": "final",
            "subject": {"reference": f"Patient/{PATIENT}"}, "code": concept(LOINC, code),
            "effectiveDateTime": when.isoformat(), "valueQuantity": {"value": value, "unit": unit}, **extra}


def pain(value: float, days: int = 10) -> Resource:
    return observation(PAIN_NRS, days_ago(days), value, "{score}")


def bpi(value: float, days: int = 10) -> Resource:
    return observation(BPI_INTERFERENCE, days_ago(days), value, "{score}")


def dxa(when: date, t_score: float) -> Resource:
    return observation(DXA_FEMUR_T, when, t_score, "{T-score}")


def crcl(value: float, code: Code = CRCL) -> Resource:
    return observation(code, months_ago(1), value, "mL/min")


def serum_calcium(value: float) -> Resource:
    return observation(SERUM_CALCIUM, months_ago(1), value, "mg/dL",
                       referenceRange=[{"low": {"value": 8.5, "unit": "mg/dL"}, "high": {"value": 10.5, "unit": "mg/dL"}}])


def condition(system: str, code: Code, onset: date | None = None) -> Resource:
    return {"resourceType": "Condition", "id": rid(), "subject": {"reference": f"Patient/{PATIENT}"},
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
            "code": concept(system, code), "onsetDateTime": (onset or months_ago(3)).isoformat()}


def icd10(code: str, display: str) -> Resource:
    return condition(ICD10, (code, display))


def service_request(code: Resource, authored: date) -> Resource:
    return {"resourceType": "ServiceRequest", "id": rid(), "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{PATIENT}"}, "code": code, "authoredOn": authored.isoformat()}


def on_ai(months: int = 12) -> Resource:
    return statement(ANASTROZOLE_1MG, months_ago(months))


def settled(*, supplements: bool = True, scan: Resource | None = None) -> tuple[Resource, ...]:
    """A chart where bone health and the usual labs are in order: the tests add one thing."""
    labs = (
        observation(TSH, months_ago(2), 2.0, "mIU/L", interpretation=[{"coding": [{"code": "N"}]}]),
        observation(VITAMIN_D, months_ago(2), 35, "ng/mL"),
        observation(PHQ9, months_ago(2), 3, "{score}"),
        crcl(80), serum_calcium(9.4),
    )
    bone = (statement(CALCIUM_CARBONATE), statement(CHOLECALCIFEROL)) if supplements else ()
    return (scan or dxa(months_ago(6), -1.0), *bone, *labs)


# --- talking to the service ----------------------------------------------------------------------


def _prefetch(templates: dict[str, str], chart: Iterable[Resource]) -> dict[str, Any]:
    """Every key the service asks for, answered as a FHIR server would answer its query: the
    resources of that type whose code, status and clinical status match the search."""
    answers: dict[str, Any] = {}
    for key, template in templates.items():
        kind, _, query = template.partition("?")
        params = dict(parse_qsl(query.replace("{{context.patientId}}", PATIENT)))
        found = [r for r in chart if r["resourceType"] == kind and _matches(r, params)]
        answers[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                        **({"entry": [{"resource": r} for r in found]} if found else {})}
    return answers


def _matches(resource: Resource, params: dict[str, str]) -> bool:
    if "code" in params:
        field = resource.get("code") or resource.get("medicationCodeableConcept") or {}
        wanted = set(params["code"].split(","))
        have = {f"{c['system']}|{c['code']}" for c in field.get("coding", [])} | {c["code"] for c in field.get("coding", [])}
        if not wanted & have:
            return False
    if "status" in params and resource.get("status") not in params["status"].split(","):
        return False
    if "clinical-status" in params:
        statuses = {c["code"] for c in resource.get("clinicalStatus", {}).get("coding", [])}
        if not statuses & set(params["clinical-status"].split(",")):
            return False
    return True


def ask(client: TestClient, *chart: Resource) -> dict[str, Any]:
    services = {s["id"]: s for s in client.get("/cds-services").json()["services"]}
    templates = services["aimss-patient-view"]["prefetch"]
    response = client.post("/cds-services/aimss-patient-view",
                           json=patient_view(PATIENT, prefetch=_prefetch(templates, chart)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert_valid_cards(body)
    return body


# --- reading the answer ---------------------------------------------------------------------------


def card_recommendations(card: Resource) -> set[str]:
    listed = (card.get("extension") or {}).get(RECOMMENDATIONS) or []
    return {card["source"]["topic"]["code"], *(coding["code"] for coding in listed)}


def recommendations(body: Resource) -> set[str]:
    return {code for card in body["cards"] for code in card_recommendations(card)}


def cards_holding(body: Resource, topic: str) -> list[Resource]:
    return [card for card in body["cards"] if topic in card_recommendations(card)]


def created(cards: Iterable[Resource]) -> Iterator[Resource]:
    for card in cards:
        for suggestion in card.get("suggestions", []):
            for action in suggestion.get("actions", []):
                if action["type"] == "create":
                    yield action["resource"]


def text(card: Resource) -> str:
    """All a clinician reads on a card: summary, detail, suggestion labels, link labels."""
    parts = [card["summary"], card.get("detail", "")]
    parts += [s["label"] for s in card.get("suggestions", [])]
    parts += [link["label"] for link in card.get("links", [])]
    return "\n".join(parts).lower()


def names(resource: Resource) -> str:
    field = resource.get("medicationCodeableConcept") or resource.get("code") or {}
    return " ".join([field.get("text", ""), *(c.get("display", "") for c in field.get("coding", []))]).lower()


def codes(resource: Resource) -> set[str]:
    field = resource.get("medicationCodeableConcept") or resource.get("code") or {}
    return {c["code"] for c in field.get("coding", [])}


def is_duloxetine(resource: Resource) -> bool:
    return resource["resourceType"] == "MedicationRequest" and (
        bool(codes(resource) & DULOXETINE_CODES) or "duloxetine" in names(resource))


def is_bone_agent(resource: Resource) -> bool:
    return resource["resourceType"] == "MedicationRequest" and (
        bool(codes(resource) & set(BISPHOSPHONATE_PRODUCTS)) or any(w in names(resource) for w in BONE_AGENT_WORDS))


def orders(body: Resource, kind: Callable[[Resource], bool]) -> list[Resource]:
    return [r for r in created(body["cards"]) if kind(r)]


def cards_proposing_duloxetine(body: Resource) -> list[Resource]:
    """Cards that order duloxetine or speak of it."""
    return [card for card in body["cards"]
            if any(is_duloxetine(r) for r in created([card])) or "duloxetine" in text(card)]


def bone_cards(body: Resource) -> list[Resource]:
    return cards_holding(body, "bone-protection")


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


# --- duloxetine: MAOIs and linezolid ---------------------------------------------------------------


def test_duloxetine_is_offered_for_moderate_pain_on_a_settled_chart(client):
    body = ask(client, on_ai(), pain(6), *settled())
    assert "duloxetine" in recommendations(body)
    assert orders(body, is_duloxetine)


def test_a_missing_breast_cancer_diagnosis_alone_does_not_stop_the_cards(client):
    body = ask(client, on_ai(), pain(6), *settled())  # no Condition at all on this chart
    assert {"duloxetine", "exercise"} <= recommendations(body)


@pytest.mark.parametrize("days_since_stop, allowed", [(13, False), (14, True), (15, True)])
def test_duloxetine_waits_14_days_after_an_maoi_is_stopped(client, days_since_stop, allowed):
    maoi = statement(PHENELZINE_15MG, months_ago(8), "stopped", end=days_ago(days_since_stop))
    body = ask(client, on_ai(), pain(6), bpi(8), maoi, *settled())
    assert bool(orders(body, is_duloxetine)) is allowed
    if not allowed:
        for card in cards_proposing_duloxetine(body):
            assert "phenelzine" in text(card), card["summary"]


@pytest.mark.parametrize("record", [
    lambda: statement(PHENELZINE_15MG, months_ago(3)),
    lambda: request(("313447", "tranylcypromine 10 MG Oral Tablet"), months_ago(1)),
    lambda: statement(("104836", "phenelzine 15 MG Oral Tablet [Nardil]"), months_ago(3)),
    lambda: statement(("9639", "selegiline"), months_ago(3)),
    lambda: statement(("6011", "isocarboxazid"), months_ago(3)),
    lambda: statement(LINEZOLID_600MG, days_ago(4)),
    lambda: statement(LINEZOLID_600MG, days_ago(20), "completed", end=days_ago(6)),
    lambda: request(PHENELZINE_15MG, months_ago(4), "stopped"),  # stopped, end date unknown
], ids=["phenelzine", "tranylcypromine-request", "nardil-brand", "selegiline-ingredient",
        "isocarboxazid", "linezolid-current", "linezolid-ended-6-days-ago", "maoi-stopped-undated"])
def test_no_card_orders_duloxetine_with_an_maoi_or_linezolid(client, record):
    """Plan (pain 6), multimodal bundle (BPI 8): neither may order it, and both say why."""
    blocker = record()
    body = ask(client, on_ai(), pain(6), bpi(8), blocker, *settled())
    assert orders(body, is_duloxetine) == []
    name = blocker["medicationCodeableConcept"]["text"].split()[0].lower()
    for card in cards_proposing_duloxetine(body):
        assert name in text(card), card["summary"]


def test_the_adherence_card_never_proposes_duloxetine_to_a_patient_on_phenelzine(client):
    paused = statement(ANASTROZOLE_1MG, months_ago(12), "on-hold")
    body = ask(client, paused, pain(5), statement(PHENELZINE_15MG, months_ago(3)), *settled())
    assert "adherence" in recommendations(body)
    assert orders(body, is_duloxetine) == []
    for card in cards_proposing_duloxetine(body):
        assert "phenelzine" in text(card), card["summary"]


# --- duloxetine: other serotonergic drugs and the label's cautions ---------------------------------


SEROTONERGIC = [
    (("312941", "sertraline 50 MG Oral Tablet"), "sertraline"),
    (("313585", "24 HR venlafaxine 75 MG Extended Release Oral Capsule"), "venlafaxine"),
    (("317136", "nortriptyline 25 MG Oral Capsule"), "nortriptyline"),
    (("704", "amitriptyline"), "amitriptyline"),
    (("313161", "sumatriptan 50 MG Oral Tablet"), "sumatriptan"),
    (("197889", "lithium carbonate 300 MG Oral Capsule"), "lithium"),
    (("835603", "tramadol hydrochloride 50 MG Oral Tablet"), "tramadol"),
    (("787390", "tapentadol"), "tapentadol"),
    (("4337", "fentanyl"), "fentanyl"),
]


@pytest.mark.parametrize("drug, word", SEROTONERGIC, ids=[w for _, w in SEROTONERGIC])
def test_every_card_proposing_duloxetine_names_the_other_serotonergic_drug(client, drug, word):
    for chart in ((pain(6),), (pain(2), bpi(8))):  # the plan's duloxetine, then the bundle's
        body = ask(client, on_ai(), *chart, statement(drug, months_ago(4)), *settled())
        proposing = cards_proposing_duloxetine(body)
        assert proposing, "duloxetine is allowed with a warning, not dropped"
        for card in proposing:
            assert word in text(card) and "serotonin" in text(card), card["summary"]


def test_the_adherence_card_names_the_other_serotonergic_drug(client):
    paused = statement(ANASTROZOLE_1MG, months_ago(12), "on-hold")
    body = ask(client, paused, pain(5), statement(SERTRALINE_50MG, months_ago(4)), *settled())
    assert "adherence" in recommendations(body)
    for card in cards_proposing_duloxetine(body):
        assert "sertraline" in text(card), card["summary"]


KIDNEY = ("kidney", "renal", "creatinine clearance")
CAUTIONS = [  # the chart's finding, and the words (any of each group) the card must say
    (lambda: icd10("K74.60", "Unspecified cirrhosis of liver"), [("liver", "hepat")]),
    (lambda: icd10("F10.20", "Alcohol dependence, uncomplicated"), [("alcohol",)]),
    (lambda: icd10("H40.20X0", "Unspecified primary angle-closure glaucoma, stage unspecified"), [("glaucoma",)]),
    (lambda: statement(WARFARIN, months_ago(5)), [("warfarin",), ("bleeding",)]),
    (lambda: crcl(29), [("29",), KIDNEY]),
    (lambda: crcl(29, EGFR), [("29",), KIDNEY]),
]


@pytest.mark.parametrize("finding, groups", CAUTIONS,
                         ids=["cirrhosis", "alcohol", "angle-closure-glaucoma", "anticoagulant", "crcl-29", "egfr-29"])
def test_duloxetine_cards_name_the_label_cautions_the_chart_shows(client, finding, groups):
    chart = [r for r in settled() if not codes(r) & {CRCL[0]}]
    body = ask(client, on_ai(), pain(6), *chart, finding())
    proposing = cards_proposing_duloxetine(body)
    assert proposing and orders(body, is_duloxetine), "a caution, not a contraindication"
    for card in proposing:
        for group in groups:
            assert any(word in text(card) for word in group), (group, card["detail"])


def test_crcl_30_is_no_renal_caution_for_duloxetine(client):
    chart = [r for r in settled() if not codes(r) & {CRCL[0]}]
    for card in cards_proposing_duloxetine(ask(client, on_ai(), pain(6), *chart, crcl(30))):
        assert "renal" not in text(card) and "kidney" not in text(card), card["detail"]


def test_open_angle_glaucoma_is_not_the_labels_caution(client):
    body = ask(client, on_ai(), pain(6), *settled(), icd10("H40.10X0", "Unspecified open-angle glaucoma, stage unspecified"))
    for card in cards_proposing_duloxetine(body):
        assert "glaucoma" not in text(card)


# --- duloxetine: the order and when it is indicated -------------------------------------------------


def _daily_dose_mg(dosage: Resource) -> float:
    quantity = dosage["doseAndRate"][0]["doseQuantity"]
    assert quantity["unit"].lower() in ("mg", "milligram") or quantity.get("code") == "mg"
    repeat = dosage["timing"]["repeat"]
    assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (1, 1, "d")
    return float(quantity["value"])


def _days(duration: Resource) -> float:
    return float(duration["value"]) * {"d": 1, "wk": 7}[duration.get("code") or duration["unit"]]


def test_the_duloxetine_order_is_structured_titration_with_review_and_taper(client):
    body = ask(client, on_ai(), pain(6), bpi(8), *settled())  # the plan's order and the bundle's
    duloxetine_orders = orders(body, is_duloxetine)
    assert duloxetine_orders
    for order in duloxetine_orders:
        first, second = sorted(order["dosageInstruction"], key=lambda d: d["sequence"])
        assert _daily_dose_mg(first) == 30 and _days(first["timing"]["repeat"]["boundsDuration"]) == 7
        assert _daily_dose_mg(second) == 60
        words = " ".join([str(order.get("note", "")), *(d.get("text", "") for d in order["dosageInstruction"]),
                          *(text(c) for c in cards_proposing_duloxetine(body))]).lower()
        assert re.search(r"12 ?weeks?|12-week", words), "review at 12 weeks"
        assert "taper" in words, "how to stop"


def test_carpal_tunnel_alone_is_not_a_neuropathic_feature(client):
    carpal = icd10("G56.01", "Carpal tunnel syndrome, right upper limb")
    body = ask(client, on_ai(), pain(0), carpal, *settled())
    assert "hand-wrist" in recommendations(body)
    assert "duloxetine" not in recommendations(body) and orders(body, is_duloxetine) == []


@pytest.mark.parametrize("conditions, fires", [
    ((("R20.2", "Paresthesia of skin"),), True),
    ((("R20.2", "Paresthesia of skin"), ("G56.01", "Carpal tunnel syndrome, right upper limb")), False),
    ((("G62.9", "Polyneuropathy, unspecified"), ("G56.01", "Carpal tunnel syndrome, right upper limb")), True),
], ids=["tingling", "tingling-explained-by-carpal-tunnel", "polyneuropathy-with-carpal-tunnel"])
def test_neuropathic_features_not_explained_by_an_entrapment(client, conditions, fires):
    body = ask(client, on_ai(), pain(0), *(icd10(*c) for c in conditions), *settled())
    assert ("duloxetine" in recommendations(body)) is fires


@pytest.mark.parametrize("code", [("F32.1", "Major depressive disorder, single episode, moderate"),
                                  ("F33.1", "Major depressive disorder, recurrent, moderate")])
def test_the_depression_codes_in_use_make_duloxetine_an_option(client, code):
    assert "duloxetine" in recommendations(ask(client, on_ai(), pain(1), icd10(*code), *settled()))


# --- bone protection: thresholds, products, contraindications ----------------------------------------


@pytest.mark.parametrize("t_score, fires", [(-1.9, False), (-2.0, True)])
def test_default_t_score_threshold_is_the_ai_consensus_minus_2(client, t_score, fires):
    body = ask(client, on_ai(), pain(0), *settled(scan=dxa(months_ago(6), t_score)))
    assert bool(orders(body, is_bone_agent)) is fires
    if fires:
        assert any("hadji" in text(card) for card in bone_cards(body))


@pytest.mark.parametrize("t_score, fires", [(-2.4, False), (-2.5, True)])
def test_a_site_may_choose_the_asco_2019_threshold(make_client, tmp_path, t_score, fires):
    site = tmp_path / "site-rules.toml"
    site.write_text('[bone-protection]\nt_score_guideline = "asco-2019"\n')
    body = ask(make_client(rules_file=site), on_ai(), pain(0), *settled(scan=dxa(months_ago(6), t_score)))
    assert bool(orders(body, is_bone_agent)) is fires
    if fires:
        assert any("asco" in text(card) for card in bone_cards(body))


@pytest.mark.parametrize("earlier, later, fires", [
    (0.5, -0.1, False),   # a fall of 0.6 SD, still normal
    (-0.8, -1.3, True),   # a fall into the osteopenic range since the last scan
    (-1.2, -1.5, False),  # osteopenic both times, above the threshold
])
def test_only_a_fall_into_the_osteopenic_range_calls_for_a_bone_modifying_agent(client, earlier, later, fires):
    body = ask(client, on_ai(36), pain(0), dxa(months_ago(30), earlier), *settled(scan=dxa(months_ago(6), later)))
    assert bool(orders(body, is_bone_agent)) is fires
    assert ("bone-protection" in recommendations(body)) is fires


def test_the_bisphosphonate_is_an_orderable_product_with_dose_and_schedule(client):
    body = ask(client, on_ai(), pain(0), *settled(scan=dxa(months_ago(6), -2.6)))
    bisphosphonates = [r for r in orders(body, is_bone_agent) if "denosumab" not in names(r)]
    assert bisphosphonates
    for order in bisphosphonates:
        assert codes(order) & set(BISPHOSPHONATE_PRODUCTS), f"not an orderable product: {names(order)}"
        assert "46041" not in codes(order)
        dosage = order["dosageInstruction"][0]
        assert dosage["doseAndRate"][0]["doseQuantity"]["value"] > 0
        assert dosage["timing"]["repeat"]["period"] and dosage["timing"]["repeat"]["periodUnit"]


def test_the_bone_card_says_kidney_calcium_vitamin_d_and_dental_status_were_considered(client):
    body = ask(client, on_ai(), pain(0), *settled(scan=dxa(months_ago(6), -2.6)))
    assert orders(body, is_bone_agent)
    (card,) = bone_cards(body)
    words = text(card)
    assert "creatinine clearance" in words and "80" in words
    assert "calcium 9.4" in words or ("calcium" in words and "9.4" in words)
    assert "vitamin d" in words and "35" in words
    assert "dental" in words


@pytest.mark.parametrize("agent", [
    ("904495", "alendronic acid 70 MG / cholecalciferol 2800 UNT Oral Tablet [Fosamax Plus D]"),
    ("904462", "alendronic acid 70 MG / cholecalciferol 5600 UNT Oral Tablet"),
    ("905024", "risedronate sodium 35 MG Oral Tablet"),
    ("904932", "ibandronic acid 150 MG Oral Tablet"),
    DENOSUMAB_60MG_PROLIA,
    ("2717862", "1 ML denosumab-bmwo 60 MG/ML Prefilled Syringe [Stoboclo]"),
], ids=["fosamax-plus-d", "alendronate-5600", "risedronate", "ibandronate", "prolia", "biosimilar"])
def test_no_bone_modifying_agent_for_a_patient_already_on_one(client, agent):
    on_it = statement(agent, months_ago(3))
    body = ask(client, on_ai(), pain(0), on_it, *settled(scan=dxa(months_ago(6), -2.8)))
    assert orders(body, is_bone_agent) == []


def test_the_label_kidney_threshold_stops_the_bisphosphonate(client):
    low_bone = settled(scan=dxa(months_ago(6), -2.6))[:-2]  # without the CrCl and calcium
    body = ask(client, on_ai(), pain(0), *low_bone, crcl(60), serum_calcium(9.4))
    (product,) = {c for r in orders(body, is_bone_agent) for c in codes(r) if c in BISPHOSPHONATE_PRODUCTS}
    threshold = BISPHOSPHONATE_PRODUCTS[product]
    below = ask(client, on_ai(), pain(0), *low_bone, crcl(threshold - 1), serum_calcium(9.4))
    assert not any(codes(r) & {product} for r in orders(below, is_bone_agent))
    assert any(str(threshold - 1) in text(card) for card in bone_cards(below)), "the card says why"
    at = ask(client, on_ai(), pain(0), *low_bone, crcl(threshold), serum_calcium(9.4))
    assert any(codes(r) & {product} for r in orders(at, is_bone_agent))


@pytest.mark.parametrize("finding, word", [
    (lambda: serum_calcium(7.9), "7.9"),
    (lambda: icd10("M87.180", "Osteonecrosis due to drugs, jaw"), "jaw"),
], ids=["hypocalcemia", "osteonecrosis-of-the-jaw"])
def test_a_known_contraindication_stops_the_bisphosphonate(client, finding, word):
    chart = [r for r in settled(scan=dxa(months_ago(6), -2.6)) if "17861-6" not in codes(r)]
    body = ask(client, on_ai(), pain(0), *chart, finding())
    assert [r for r in orders(body, is_bone_agent) if "denosumab" not in names(r)] == []
    assert any(word in text(card) for card in bone_cards(body))


# --- bone protection: denosumab lapse, calcium and vitamin D, the baseline scan ---------------------


@pytest.mark.parametrize("last_dose, warns", [
    (months_ago(6), False),
    (months_ago(6) - timedelta(days=1), True),
], ids=["6-months", "6-months-and-a-day"])
def test_an_overdue_denosumab_dose_warns_of_rebound_vertebral_fractures(client, last_dose, warns):
    dose = statement(DENOSUMAB_60MG_PROLIA, status="completed")
    del dose["effectivePeriod"]
    dose["effectiveDateTime"] = last_dose.isoformat()  # one injection
    body = ask(client, on_ai(), pain(0), dose, *settled())
    said = " ".join(text(card) for card in bone_cards(body))
    assert ("rebound" in said and "vertebral" in said) is warns
    if warns:
        assert {card["indicator"] for card in bone_cards(body)} & {"warning", "critical"}


def test_a_stopped_denosumab_warns_of_rebound_even_before_6_months(client):
    stopped = request(DENOSUMAB_60MG_PROLIA, months_ago(4), "stopped")
    body = ask(client, on_ai(), pain(0), stopped, *settled())
    said = " ".join(text(card) for card in bone_cards(body))
    assert "rebound" in said and "vertebral" in said


def _dose_values(order: Resource) -> list[tuple[float, str]]:
    found = []
    for dosage in order.get("dosageInstruction", []):
        for dose in dosage.get("doseAndRate", []):
            if "doseQuantity" in dose:
                found.append((dose["doseQuantity"]["value"], dose["doseQuantity"].get("code") or dose["doseQuantity"]["unit"]))
            if "doseRange" in dose:
                for end in ("low", "high"):
                    found.append((dose["doseRange"][end]["value"], dose["doseRange"][end].get("code") or dose["doseRange"][end]["unit"]))
    return found


def test_calcium_and_vitamin_d_diet_first_and_orders_with_a_dose(client):
    body = ask(client, on_ai(), pain(0), *settled(supplements=False))
    (card,) = bone_cards(body)
    assert "diet" in text(card) and ("1,200" in text(card) or "1200" in text(card))
    made = list(created([card]))
    calcium = [r for r in made if "calcium" in names(r)]
    vitamin_d = [r for r in made if "cholecalciferol" in names(r) or "vitamin d" in names(r)]
    assert calcium and vitamin_d
    for order in calcium:
        assert _dose_values(order) and order["dosageInstruction"][0]["timing"]["repeat"]["frequency"]
    for order in vitamin_d:
        iu = [value for value, unit in _dose_values(order) if unit in ("[IU]", "IU")]
        assert iu and all(800 <= value <= 1000 for value in iu), _dose_values(order)


@pytest.mark.parametrize("ai_months, scan_months_ago", [(4, 5), (10, 3), (12, 4), (12, 5)])
def test_a_scan_near_or_since_the_ai_start_is_the_baseline(client, ai_months, scan_months_ago):
    body = ask(client, on_ai(ai_months), pain(0), *settled(scan=dxa(months_ago(scan_months_ago), -1.0)))
    assert "bone-density-scan" not in recommendations(body)
    assert not any("baseline" in text(card) for card in body["cards"])


def test_no_scan_near_a_recent_ai_start_still_asks_for_a_baseline(client):
    body = ask(client, on_ai(3), pain(0), *settled(scan=dxa(months_ago(20), -1.0)))
    assert "bone-density-scan" in recommendations(body)


# --- switch therapy and red flags: timing ------------------------------------------------------------

PT = concept(SNOMED, ("308447003", "Referral to physiotherapist (procedure)"))


@pytest.mark.parametrize("started_days_ago, counts", [
    (100, True),  # before the first reading (70 days ago) and 95 days before the last
    (60, False),  # after the first reading
], ids=["before-first-reading", "after-first-reading"])
def test_switch_therapy_counts_an_intervention_only_if_it_preceded_the_readings(client, started_days_ago, counts):
    body = ask(client, on_ai(), pain(5, 70), pain(6, 5), service_request(PT, days_ago(started_days_ago)), *settled())
    assert ("switch-therapy" in recommendations(body)) is counts


def test_switch_therapy_counts_duloxetine_started_before_the_readings(client):
    body = ask(client, on_ai(), pain(5, 70), pain(6, 5), statement(DULOXETINE_30MG, days_ago(120)), *settled())
    assert "switch-therapy" in recommendations(body)
    late = ask(client, on_ai(), pain(5, 70), pain(6, 5), statement(DULOXETINE_30MG, days_ago(30)), *settled())
    assert "switch-therapy" not in recommendations(late)


@pytest.mark.parametrize("metastatic", [True, False])
def test_switch_therapy_raises_stopping_only_with_metastatic_disease(client, metastatic):
    mets = (icd10("C79.51", "Secondary malignant neoplasm of bone"),) if metastatic else ()
    body = ask(client, on_ai(), pain(5, 70), pain(6, 5), service_request(PT, days_ago(100)), *mets, *settled())
    (card,) = cards_holding(body, "switch-therapy")
    assert ("metastatic" in text(card) and "stopping" in text(card)) is metastatic


@pytest.mark.parametrize("readings, started_days_ago, fires", [
    (((3, 120), (6, 5)), 150, True),            # on duloxetine before the rise
    (((3, 120), (6, 5)), 60, False),            # started after the low reading: no rise on it
    (((3, 120), (3, 40), (6, 5)), 60, True),    # started, then 3 -> 6 on it
    (((3, 120), (6, 5)), 3, False),             # started after the rise
], ids=["before-rise", "no-reading-on-treatment", "rise-on-treatment", "after-rise"])
def test_worsening_despite_treatment_needs_the_treatment_before_the_rise(client, readings, started_days_ago, fires):
    body = ask(client, on_ai(), *(pain(v, d) for v, d in readings),
               statement(DULOXETINE_30MG, days_ago(started_days_ago)), *settled())
    assert ("red-flags" in recommendations(body)) is fires


@pytest.mark.parametrize("code", [
    ("I97.2", "Postmastectomy lymphedema syndrome"),
    ("I89.0", "Lymphedema, not elsewhere classified"),
    ("R59.0", "Localized enlarged lymph nodes"),
    ("R22.2", "Localized swelling, mass and lump, trunk"),
    ("G54.0", "Brachial plexus disorders"),
    ("G83.20", "Monoplegia of upper limb affecting unspecified side"),
], ids=["postmastectomy-lymphedema", "lymphedema", "axillary-nodes", "chest-wall-lump", "brachial-plexus", "monoplegia"])
def test_red_flags_for_lymphedema_chest_wall_axillary_and_focal_neurological_findings(client, code):
    body = ask(client, on_ai(), pain(0), icd10(*code), *settled())
    (card,) = cards_holding(body, "red-flags")
    assert card["indicator"] in ("warning", "critical")
    assert code[1].split(",")[0].lower() in text(card)


# --- who the cards are for; nothing twice; value sets -----------------------------------------------


def _fertility_letrozole(**extra: Any) -> Resource:
    return request(LETROZOLE_2_5MG, days_ago(2), **extra)


@pytest.mark.parametrize("chart", [
    lambda: (_fertility_letrozole(reasonCode=[concept(ICD10, ("N97.0", "Female infertility associated with anovulation"))]),),
    lambda: (_fertility_letrozole(), icd10("N97.9", "Female infertility, unspecified")),
    lambda: (_fertility_letrozole(dispenseRequest={"expectedSupplyDuration": {"value": 5, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}),),
], ids=["reason-infertility", "infertility-diagnosis", "five-day-course"])
def test_letrozole_for_ovulation_induction_gets_no_aimss_or_bone_cards(client, chart):
    body = ask(client, *chart(), pain(6), bpi(8), dxa(months_ago(30), -2.6))
    assert recommendations(body) - {"data-incomplete"} == set()


def test_in_place_exercise_and_physical_therapy_are_not_suggested_again(client):
    first = ask(client, on_ai(), pain(2), bpi(8), *settled())
    referrals = [r for r in created(first["cards"]) if r["resourceType"] == "ServiceRequest"
                 and re.search(r"exercise|physio|physical therap", names(r))]
    assert len({tuple(sorted(codes(r))) for r in referrals}) >= 2, "exercise and PT are proposed first"
    in_place = [service_request(r["code"], months_ago(1)) for r in referrals]
    again = ask(client, on_ai(), pain(2), bpi(8), *in_place, *settled())
    offered = {c for r in created(again["cards"]) if r["resourceType"] == "ServiceRequest" for c in codes(r)}
    assert not offered & {c for r in in_place for c in codes(r)}


@pytest.mark.parametrize("code", [("M65.321", "Trigger finger, right index finger"), ("M65.332", "Trigger finger, left middle finger"),
                                  ("M65.341", "Trigger finger, right ring finger"), ("M65.352", "Trigger finger, left little finger"),
                                  ("M65.312", "Trigger thumb, left thumb")])
def test_trigger_finger_of_every_digit_is_a_hand_wrist_syndrome(client, code):
    assert "hand-wrist" in recommendations(ask(client, on_ai(), pain(0), icd10(*code), *settled()))


@pytest.mark.parametrize("nsaid", [("152695", "meloxicam 15 MG Oral Tablet"), ("855906", "diclofenac sodium 50 MG Delayed Release Oral Tablet"),
                                   ("198013", "naproxen 250 MG Oral Tablet")])
def test_the_common_nsaids_are_recognised(client, nsaid):
    body = ask(client, on_ai(), pain(0), statement(nsaid, months_ago(2)), *settled())
    assert "analgesic-expectations" in recommendations(body)


# --- evidence stated as strong as it is --------------------------------------------------------------


def test_the_multimodal_card_states_the_seed_cohorts_limits(client):
    body = ask(client, on_ai(), pain(2), bpi(8), *settled())
    (card,) = cards_holding(body, "multimodal-management")
    words = text(card)
    assert "retrospective" in words and ("single-centre" in words or "single-center" in words)
    assert "composite" in words
    assert re.search(r"(did not|didn't|was not|not) test", words), "the bundle itself was not tested"


def test_the_duloxetine_card_states_a_modest_effect_that_faded(client):
    body = ask(client, on_ai(), pain(6), *settled())
    (card,) = cards_holding(body, "duloxetine")
    assert "0.8" in text(card) and "stopp" in text(card)


ENGINEERING = re.compile(
    r"unverified|verify before|confirm (the )?dose|"
    r"\b(Observation|MedicationStatement|MedicationRequest|Condition|Procedure|ServiceRequest|"
    r"QuestionnaireResponse|DiagnosticReport)/[A-Za-z0-9\-.]+", re.IGNORECASE)


def test_clinician_text_carries_no_engineering_notes(client):
    """A rich chart lights most cards; none may carry verification flags or resource ids."""
    chart = (on_ai(), pain(5, 70), pain(6, 5), bpi(8), statement(SERTRALINE_50MG, months_ago(4)),
             service_request(PT, days_ago(100)), icd10("G56.01", "Carpal tunnel syndrome, right upper limb"),
             icd10("I97.2", "Postmastectomy lymphedema syndrome"), *settled(supplements=False, scan=dxa(months_ago(30), -2.6)))
    body = ask(client, *chart)
    assert len(recommendations(body)) >= 5
    for card in body["cards"]:
        assert not ENGINEERING.search(card["summary"] + card.get("detail", "")), card["detail"]
        for resource in created([card]):
            dosage_text = " ".join(d.get("text", "") for d in resource.get("dosageInstruction", []))
            assert not ENGINEERING.search(dosage_text), dosage_text
