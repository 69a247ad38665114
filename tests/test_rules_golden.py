"""Golden rules: for every topic a patient who must get it and one who must not, with a
pinned clock, and the boundaries of the thresholds (pain 3/4, BPI 6.9/7.0, DXA 23/25 months,
T-score -1.9/-2.0)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.clinical.dates import months_before
from cds_service.clinical.facts import extract_facts
from cds_service.clinical.facts.medications import drafted_orders
from cds_service.clinical.facts.model import DataSource
from cds_service.clinical.rules.order_select import evaluate_order_select
from cds_service.clinical.rules.patient_view import evaluate_patient_view
from sandbox.synthetic import (
    ANASTROZOLE_1MG,
    DXA_FEMUR_T,
    RXNORM,
    SNOMED,
    TAMOXIFEN_10MG,
    coding,
    medication_statement,
    observation,
)
from tests.conftest import TODAY

PAIN = DataSource.PAIN
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
P = "golden"
_ids = iter(range(10_000))


def rid() -> str:
    return f"g{next(_ids)}"


def ai(months_ago: int = 12, status: str = "active", code=ANASTROZOLE_1MG, reason: str | None = None) -> dict:
    resource = medication_statement(P, rid(), code, months_before(TODAY, months_ago), status)
    if reason:
        resource["statusReason"] = [{"text": reason}]
    return resource


def drug(code: str, display: str) -> dict:
    return medication_statement(P, rid(), (code, display), months_before(TODAY, 6))


def pain(value: float, days_ago: int = 10) -> dict:
    return observation(P, rid(), ("72514-3", "Pain severity 0-10"), TODAY - timedelta(days=days_ago), value, "{score}")


def bpi(value: float, days_ago: int = 10) -> dict:
    return observation(P, rid(), ("77565-0", "BPI interference"), TODAY - timedelta(days=days_ago), value, "{score}")


def dxa(months_ago: int, t_score: float = -1.0, code=DXA_FEMUR_T) -> dict:
    return observation(P, rid(), code, months_before(TODAY, months_ago), t_score, "{T-score}")


def lab(code: str, value: float, unit: str, months_ago: int = 2, **extra) -> dict:
    return observation(P, rid(), (code, code), months_before(TODAY, months_ago), value, unit) | extra


def condition(system: str, code: str, display: str) -> dict:
    return {
        "resourceType": "Condition", "id": rid(), "subject": {"reference": f"Patient/{P}"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": coding(system, code, display),
    }


def referral(code: str, display: str, months_ago: int = 4) -> dict:
    return {"resourceType": "ServiceRequest", "id": rid(), "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{P}"}, "code": coding(SNOMED, code, display),
            "authoredOn": months_before(TODAY, months_ago).isoformat()}


GOOD_LABS = (lab("3016-3", 2.0, "mIU/L", interpretation=[{"coding": [{"code": "N"}]}]),
             lab("62292-8", 35, "ng/mL"), lab("44261-6", 3, "{score}"))
CALCIUM = drug("1897", "calcium carbonate")
QUIET = (dxa(6), CALCIUM, *GOOD_LABS)  # a well-managed chart: nothing else to say


def topics(*resources: dict, unavailable=()) -> set[str]:
    facts = extract_facts(resources, KNOWLEDGE, TODAY, unavailable)
    return {f.topic for f in evaluate_patient_view(facts, KNOWLEDGE)}


@pytest.fixture(autouse=True)
def _knowledge(knowledge):
    global KNOWLEDGE
    KNOWLEDGE = knowledge


def test_a_well_managed_patient_gets_no_card():
    assert topics(ai(), pain(0), *QUIET) == set()


def test_no_aromatase_inhibitor_means_no_aimss_topics():
    assert topics(medication_statement(P, rid(), TAMOXIFEN_10MG, months_before(TODAY, 6)), pain(8), bpi(9)) == set()


def test_symptom_assessment():
    assert "symptom-assessment" in topics(ai(), *QUIET)
    assert "symptom-assessment" not in topics(ai(), pain(0, days_ago=30), *QUIET)
    assert "symptom-assessment" not in topics(ai(months_ago=1), *QUIET), "AI started < 6 weeks ago"
    assert "symptom-assessment" not in topics(ai(), *QUIET, unavailable={PAIN}), "unknown is not 'none'"


def test_exercise():
    assert "exercise" in topics(ai(), pain(1), *QUIET)
    assert "exercise" in topics(ai(), pain(0), condition(SNOMED, "57676002", "Pain of joint"), *QUIET)
    assert "exercise" not in topics(ai(), pain(0), *QUIET)


@pytest.mark.parametrize("score, fires", [(6.9, False), (7.0, True)])
def test_multimodal_management_boundary(score, fires):
    assert ("multimodal-management" in topics(ai(), pain(2), bpi(score), *QUIET)) is fires


def test_multimodal_from_a_bpi_questionnaire_response():
    response = {
        "resourceType": "QuestionnaireResponse", "id": rid(), "status": "completed",
        "questionnaire": "http://aimss-cds.example.org/fhir/Questionnaire/bpi-short-form",
        "subject": {"reference": f"Patient/{P}"}, "authored": (TODAY - timedelta(days=3)).isoformat(),
        "item": [{"linkId": link, "answer": [{"valueInteger": 8}]} for link in
                 ("interference-general-activity", "interference-mood", "interference-walking", "interference-sleep")],
    }
    assert "multimodal-management" in topics(ai(), *QUIET, response)
    response["item"] = response["item"][:3]  # fewer than 4 of 7 items: no score
    assert "multimodal-management" not in topics(ai(), *QUIET, response)


@pytest.mark.parametrize("score, fires", [(3, False), (4, True)])
def test_duloxetine_pain_boundary(score, fires):
    assert ("duloxetine" in topics(ai(), pain(score), *QUIET)) is fires


def test_duloxetine_for_neuropathy_or_depression_and_not_when_already_on_it():
    assert "duloxetine" in topics(ai(), pain(1), condition(ICD10, "R20.2", "Paresthesia of skin"), *QUIET)
    assert "duloxetine" in topics(ai(), pain(1), *QUIET[:2], lab("44261-6", 12, "{score}"))
    assert "duloxetine" not in topics(ai(), pain(6), drug("596930", "duloxetine 30 MG"), *QUIET)


def test_analgesic_expectations():
    assert "analgesic-expectations" in topics(ai(), pain(2), *QUIET)
    assert "analgesic-expectations" in topics(ai(), pain(0), drug("197806", "ibuprofen 600 MG Oral Tablet"), *QUIET)
    assert "analgesic-expectations" not in topics(ai(), pain(6), *QUIET)


def test_hand_wrist():
    assert "hand-wrist" in topics(ai(), pain(0), condition(ICD10, "M65.311", "Trigger thumb, right thumb"), *QUIET)
    assert "hand-wrist" not in topics(ai(), pain(2), *QUIET)


@pytest.mark.parametrize("months_ago, fires", [(23, False), (25, True)])
def test_bone_density_scan_boundary(months_ago, fires):
    assert ("bone-density-scan" in topics(ai(months_ago=36), pain(0), dxa(months_ago), CALCIUM, *GOOD_LABS)) is fires


def test_bone_density_scan_without_a_baseline_near_the_ai_start():
    assert "bone-density-scan" in topics(ai(months_ago=3), pain(0), dxa(20), CALCIUM, *GOOD_LABS)
    assert "bone-density-scan" not in topics(ai(months_ago=3), pain(0), dxa(4), CALCIUM, *GOOD_LABS)


@pytest.mark.parametrize("t_score, fires", [(-1.9, False), (-2.0, True)])
def test_bone_protection_t_score_boundary(t_score, fires):
    assert ("bone-protection" in topics(ai(), pain(0), dxa(6, t_score), CALCIUM, *GOOD_LABS)) is fires


def test_bone_protection_for_a_falling_t_score_or_missing_calcium():
    assert "bone-protection" in topics(ai(), pain(0), dxa(30, -0.8), dxa(6, -1.3), CALCIUM, *GOOD_LABS)
    assert "bone-protection" in topics(ai(), pain(0), dxa(6), *GOOD_LABS)
    assert "bone-protection" not in topics(ai(), pain(0), dxa(6, -2.6), CALCIUM, drug("46041", "alendronate"), *GOOD_LABS)


def test_contributing_factors():
    assert "contributing-factors" in topics(ai(), pain(3), dxa(6), CALCIUM)
    assert "contributing-factors" in topics(ai(), pain(3), dxa(6), CALCIUM, *GOOD_LABS[:2], lab("62292-8", 30, "nmol/L"), GOOD_LABS[2])
    assert "contributing-factors" not in topics(ai(), pain(3), *QUIET)


def test_switch_therapy():
    persisting = (pain(5, days_ago=70), pain(6, days_ago=5), referral("308447003", "Referral to physiotherapist"))
    assert "switch-therapy" in topics(ai(), *persisting, *QUIET)
    assert "switch-therapy" not in topics(ai(), pain(5, days_ago=20), pain(6, days_ago=5), referral("308447003", "x"), *QUIET), "< 6 weeks apart"
    assert "switch-therapy" in topics(ai(status="stopped", reason="joint pain"), ai(code=("200064", "letrozole 2.5 MG Oral Tablet")), pain(2), *QUIET)


def test_red_flags():
    worsening = (pain(3, days_ago=120), pain(6, days_ago=5), drug("596930", "duloxetine 30 MG"))
    assert "red-flags" in topics(ai(), *worsening, *QUIET)
    assert "red-flags" not in topics(ai(), pain(3, days_ago=120), pain(6, days_ago=5), *QUIET), "no treatment yet"


def test_adherence():
    assert "adherence" in topics(ai(status="on-hold"), pain(4), *QUIET)
    assert "adherence" not in topics(ai(status="on-hold"), pain(0), *QUIET)


def test_unavailable_data_is_said_not_hidden():
    assert topics(ai(), pain(0), *QUIET, unavailable={"conditions"}) >= {"data-incomplete"}


def order_topics(draft_code: tuple[str, str], *chart: dict) -> set[str]:
    draft = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft", "intent": "order",
             "subject": {"reference": f"Patient/{P}"}, "medicationCodeableConcept": coding(RXNORM, *draft_code)}
    drafts = drafted_orders([{"resource": draft}], ["MedicationRequest/request-123"], KNOWLEDGE)
    facts = extract_facts(chart, KNOWLEDGE, TODAY)
    return {f.topic for f in evaluate_order_select(facts, KNOWLEDGE, drafts)}


def test_order_select_topics():
    assert order_topics(("72143", "raloxifene"), ai()) == {"serm-with-ai"}
    assert order_topics(("72143", "raloxifene")) == set()
    assert order_topics(("197658", "estradiol 1 MG Oral Tablet"), ai()) == {"estrogen-with-ai"}
    assert order_topics(TAMOXIFEN_10MG, drug("32937", "paroxetine")) == {"tamoxifen-cyp2d6"}
    assert order_topics(("32937", "paroxetine"), drug(*TAMOXIFEN_10MG)) == {"tamoxifen-cyp2d6"}
    assert order_topics(TAMOXIFEN_10MG) == set()
    assert order_topics(("596930", "duloxetine 30 MG"), drug("10689", "tramadol")) == {"serotonergic-interaction"}
    assert order_topics(("197806", "ibuprofen 600 MG Oral Tablet"), ai(), pain(4), dxa(6)) == {"analgesic-expectations"}
    assert order_topics(("197806", "ibuprofen 600 MG Oral Tablet"), ai(), pain(0), dxa(6)) == set()
    assert order_topics(ANASTROZOLE_1MG) == {"ai-start-bone-health"}
    assert order_topics(ANASTROZOLE_1MG, dxa(6)) == set()
