"""Synthetic patients as FHIR R4 transaction bundles, dated relative to ``today``.

Each patient exists to show (or not show) particular cards; ``SandboxPatient.expected``
names the topics the service must answer with on patient-view, and each ``SandboxDraft`` the
topics of order-select for that draft, so the sandbox page and the tests share one definition
of "right". Every code comes from a ValueSet in ``fhir_profiles/`` (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from cds_service.clinical.dates import months_before

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
BPI_QUESTIONNAIRE = "http://aimss-cds.example.org/fhir/Questionnaire/bpi-short-form"

Resource = dict[str, Any]
Code = tuple[str, str]

# RxNorm: SCDs (a strength and form) and ingredients, as EHRs record either.
ANASTROZOLE_1MG = ("199224", "anastrozole 1 MG Oral Tablet")
ANASTROZOLE = ("84857", "anastrozole")
LETROZOLE_2_5MG = ("200064", "letrozole 2.5 MG Oral Tablet")
EXEMESTANE_25MG = ("310261", "exemestane 25 MG Oral Tablet")
TAMOXIFEN_10MG = ("198240", "tamoxifen 10 MG Oral Tablet")
CALCIUM_CARBONATE = ("1897", "calcium carbonate")
CHOLECALCIFEROL = ("2418", "cholecalciferol")
DULOXETINE_30MG = ("596930", "duloxetine 30 MG Delayed Release Oral Capsule")
TRAMADOL_50MG = ("835603", "tramadol hydrochloride 50 MG Oral Tablet")
PHENELZINE_15MG = ("312347", "phenelzine 15 MG Oral Tablet")
PAROXETINE_20MG = ("1738495", "paroxetine hydrochloride 20 MG Oral Tablet")
NAPROXEN_500MG = ("198014", "naproxen 500 MG Oral Tablet")
IBUPROFEN_600MG = ("197806", "ibuprofen 600 MG Oral Tablet")
ACETAMINOPHEN_500MG = ("198440", "acetaminophen 500 MG Oral Tablet")
RALOXIFENE_60MG = ("1490065", "raloxifene hydrochloride 60 MG Oral Tablet")
ESTRADIOL_1MG = ("197658", "estradiol 1 MG Oral Tablet")

# LOINC
DXA_FEMUR_T = ("38263-0", "DXA Femur [T-score] Bone density")
DXA_SPINE_T = ("38267-1", "DXA Lumbar spine [T-score] Bone density")
PAIN_NRS = ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported")
BPI_INTERFERENCE = ("77565-0", "Pain interference score [BPI Short Form]")
TSH = ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma")
VITAMIN_D = ("62292-8", "25-Hydroxyvitamin D3+25-Hydroxyvitamin D2 [Mass/volume] in Serum or Plasma")
PHQ9 = ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]")

# SNOMED CT and ICD-10-CM
BREAST_CANCER = ("C50.912", "Malignant neoplasm of unspecified site of left female breast")
TRIGGER_FINGER = ("1539003", "Acquired trigger finger (disorder)")
JOINT_PAIN_HANDS = ("M25.541", "Pain in joints of right hand")
DEPRESSION = ("F32.A", "Depression, unspecified")
OSTEOPOROSIS = ("102447009", "Postmenopausal osteoporosis (disorder)")
PT_REFERRAL = ("308447003", "Referral to physiotherapist (procedure)")
EXERCISE_REFERRAL = ("390864007", "Referral for exercise therapy (procedure)")
DXA_PROCEDURE = ("312681000", "Bone density scan (procedure)")


@dataclass(frozen=True)
class SandboxDraft:
    """A medication order the sandbox page can draft for one patient, and its expected cards."""

    id: str
    patient_id: str
    label: str
    medication: Code
    expected: frozenset[str]

    def resource(self, today: date) -> Resource:
        """The draft as the public sandbox sends it in ``draftOrders`` (R4, status draft)."""
        return {
            "resourceType": "MedicationRequest",
            "id": self.id,
            "status": "draft",
            "intent": "order",
            "subject": {"reference": f"Patient/{self.patient_id}"},
            "authoredOn": today.isoformat(),
            "medicationCodeableConcept": coding(RXNORM, *self.medication),
            "dosageInstruction": [{
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {
                    "value": 1, "system": "http://unitsofmeasure.org", "code": "{pill}",
                }}],
            }],
        }


@dataclass(frozen=True)
class SandboxPatient:
    id: str
    name: str
    story: str
    expected: frozenset[str]
    resources: tuple[Resource, ...]
    drafts: tuple[SandboxDraft, ...] = ()

    def transaction(self) -> Resource:
        """A transaction Bundle that PUTs every resource, so reloading is idempotent."""
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": f"urn:aimss:{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in (self.patient_resource(), *self.resources)
            ],
        }

    def patient_resource(self) -> Resource:
        given, family = self.name.split(" ", 1)
        return {
            "resourceType": "Patient",
            "id": self.id,
            "name": [{"given": [given], "family": family}],
            "gender": "female",
            "birthDate": "1958-04-12",
        }


def coding(system: str, code: str, display: str) -> Resource:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def medication_statement(
    patient: str, rid: str, rxnorm: Code, start: date, status: str = "active"
) -> Resource:
    return {
        "resourceType": "MedicationStatement",
        "id": rid,
        "status": status,
        "subject": {"reference": f"Patient/{patient}"},
        "medicationCodeableConcept": coding(RXNORM, *rxnorm),
        "effectivePeriod": {"start": start.isoformat()},
    }


def medication_request(
    patient: str, rid: str, rxnorm: Code, authored: date, status: str = "active"
) -> Resource:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "medicationCodeableConcept": coding(RXNORM, *rxnorm),
        "authoredOn": authored.isoformat(),
    }


def observation(
    patient: str, rid: str, loinc: Code, when: date, value: float, unit: str
) -> Resource:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "code": coding(LOINC, *loinc),
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {"value": value, "unit": unit},
    }


def condition(patient: str, rid: str, system: str, code: Code, onset: date) -> Resource:
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "code": coding(system, *code),
        "onsetDateTime": onset.isoformat(),
    }


def referral(patient: str, rid: str, snomed: Code, authored: date) -> Resource:
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "code": coding(SNOMED, *snomed),
        "authoredOn": authored.isoformat(),
    }


def dxa_procedure(patient: str, rid: str, performed: date) -> Resource:
    return {
        "resourceType": "Procedure",
        "id": rid,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
        "code": coding(SNOMED, *DXA_PROCEDURE),
        "performedDateTime": performed.isoformat(),
    }


def bpi_response(patient: str, rid: str, authored: date, answers: dict[str, int]) -> Resource:
    """A completed BPI short form (fhir_profiles/Questionnaire-bpi-short-form.json)."""
    def group(prefix: str) -> Resource:
        return {
            "linkId": prefix,
            "item": [
                {"linkId": link, "answer": [{"valueInteger": value}]}
                for link, value in answers.items() if link.startswith(prefix + "-")
            ],
        }

    return {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "questionnaire": BPI_QUESTIONNAIRE,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
        "authored": authored.isoformat(),
        "item": [group("severity"), group("interference")],
    }


def normal_labs(patient: str, today: date) -> tuple[Resource, ...]:
    """TSH, 25-OH vitamin D and PHQ-9 done two months ago, all normal."""
    when = months_before(today, 2)
    tsh = observation(patient, f"{patient}-tsh", TSH, when, 2.1, "mIU/L")
    tsh["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": "N"}]}]
    return (
        tsh,
        observation(patient, f"{patient}-vitd", VITAMIN_D, when, 34, "ng/mL"),
        observation(patient, f"{patient}-phq9", PHQ9, when, 3, "{score}"),
    )


def bone_health_in_order(patient: str, today: date, ai_start: date) -> tuple[Resource, ...]:
    """A baseline DXA at the AI start, one 6 months ago, calcium and vitamin D: no bone cards."""
    recent = months_before(today, 6)
    scans = [observation(patient, f"{patient}-dxa-0", DXA_FEMUR_T, ai_start, -0.9, "{T-score}")]
    if recent > ai_start:
        scans.append(observation(patient, f"{patient}-dxa-1", DXA_FEMUR_T, recent, -1.1, "{T-score}"))
    return (
        *scans,
        medication_statement(patient, f"{patient}-calcium", CALCIUM_CARBONATE, months_before(today, 10)),
        medication_statement(patient, f"{patient}-vitd3", CHOLECALCIFEROL, months_before(today, 10)),
    )


def pain(patient: str, rid: str, when: date, value: float) -> Resource:
    return observation(patient, rid, PAIN_NRS, when, value, "{score}")


def sandbox_patients(today: date) -> list[SandboxPatient]:
    """Every patient-view topic at least once, a patient with no AI, one with almost no data,
    and drafts for every order-select topic."""
    days = lambda n: today - timedelta(days=n)  # noqa: E731 (a local shorthand)
    months = lambda n: months_before(today, n)  # noqa: E731
    return [
        SandboxPatient(
            id="aimss-no-dxa",
            name="Alice Anastrozole",
            story="On anastrozole for 8 months; no DXA, pain score or calcium on record.",
            expected=frozenset({"bone-density-scan", "symptom-assessment", "bone-protection"}),
            resources=(
                medication_statement("aimss-no-dxa", "aimss-no-dxa-ai", ANASTROZOLE_1MG, months(8)),
            ),
            drafts=(
                SandboxDraft("draft-raloxifene", "aimss-no-dxa", "Raloxifene 60 mg daily",
                             RALOXIFENE_60MG, frozenset({"serm-with-ai"})),
                SandboxDraft("draft-estradiol", "aimss-no-dxa", "Estradiol 1 mg daily",
                             ESTRADIOL_1MG, frozenset({"estrogen-with-ai"})),
            ),
        ),
        SandboxPatient(
            id="aimss-recent-dxa",
            name="Beth Letrozole",
            story="On letrozole for 4 months (a MedicationRequest); last DXA 20 months ago "
            "(T-score -1.2), long before the AI: no baseline near its start.",
            expected=frozenset({"bone-density-scan", "symptom-assessment", "bone-protection"}),
            resources=(
                medication_request("aimss-recent-dxa", "aimss-recent-dxa-ai", LETROZOLE_2_5MG, months(4)),
                observation("aimss-recent-dxa", "aimss-recent-dxa-t", DXA_FEMUR_T, months(20), -1.2, "{T-score}"),
            ),
        ),
        SandboxPatient(
            id="aimss-old-dxa",
            name="Carol Oldscan",
            story="On anastrozole for 3 years; last DXA 30 months ago; no pain score or calcium.",
            expected=frozenset({"bone-density-scan", "symptom-assessment", "bone-protection"}),
            resources=(
                medication_statement("aimss-old-dxa", "aimss-old-dxa-ai", ANASTROZOLE_1MG, months(36)),
                observation("aimss-old-dxa", "aimss-old-dxa-t", DXA_FEMUR_T, months(30), -1.6, "{T-score}"),
            ),
        ),
        SandboxPatient(
            id="aimss-no-ai",
            name="Dana Tamoxifen",
            story="On tamoxifen, never on an aromatase inhibitor: no AIMSS cards.",
            expected=frozenset(),
            resources=(
                medication_statement("aimss-no-ai", "aimss-no-ai-tam", TAMOXIFEN_10MG, days(400)),
            ),
            drafts=(
                SandboxDraft("draft-paroxetine", "aimss-no-ai", "Paroxetine 20 mg daily",
                             PAROXETINE_20MG, frozenset({"tamoxifen-cyp2d6"})),
                SandboxDraft("draft-anastrozole", "aimss-no-ai", "Anastrozole 1 mg daily (switch from tamoxifen)",
                             ANASTROZOLE_1MG, frozenset({"ai-start-bone-health"})),
            ),
        ),
        SandboxPatient(
            id="aimss-mild",
            name="Erin Mildpain",
            story="On exemestane 10 months; joint pain 2/10 last week, taking naproxen; "
            "DXA, calcium and labs up to date.",
            expected=frozenset({"exercise", "analgesic-expectations"}),
            resources=(
                medication_request("aimss-mild", "aimss-mild-ai", EXEMESTANE_25MG, months(10)),
                medication_statement("aimss-mild", "aimss-mild-naproxen", NAPROXEN_500MG, months(1)),
                pain("aimss-mild", "aimss-mild-pain", days(7), 2),
                *bone_health_in_order("aimss-mild", today, months(10)),
                *normal_labs("aimss-mild", today),
            ),
            drafts=(
                SandboxDraft("draft-ibuprofen", "aimss-mild", "Ibuprofen 600 mg three times daily",
                             IBUPROFEN_600MG, frozenset({"analgesic-expectations"})),
            ),
        ),
        SandboxPatient(
            id="aimss-severe-bpi",
            name="Fiona Interference",
            story="On anastrozole 5 months; BPI short form last week: average pain 6, "
            "interference 7.6 (sleep, walking, work); on tramadol.",
            expected=frozenset({"multimodal-management", "exercise", "duloxetine"}),
            resources=(
                medication_statement("aimss-severe-bpi", "aimss-severe-bpi-ai", ANASTROZOLE, months(5)),
                medication_statement("aimss-severe-bpi", "aimss-severe-bpi-tramadol", TRAMADOL_50MG, months(1)),
                bpi_response("aimss-severe-bpi", "aimss-severe-bpi-qr", days(6), {
                    "severity-worst": 8, "severity-least": 3, "severity-average": 6, "severity-now": 5,
                    "interference-general-activity": 7, "interference-mood": 6, "interference-walking": 8,
                    "interference-work": 8, "interference-relations": 6, "interference-sleep": 9,
                    "interference-enjoyment": 9,
                }),
                *bone_health_in_order("aimss-severe-bpi", today, months(5)),
                *normal_labs("aimss-severe-bpi", today),
            ),
            drafts=(
                SandboxDraft("draft-duloxetine-tramadol", "aimss-severe-bpi", "Duloxetine 30 mg daily",
                             DULOXETINE_30MG, frozenset({"serotonergic-interaction"})),
                SandboxDraft("draft-acetaminophen", "aimss-severe-bpi", "Acetaminophen 500 mg as needed",
                             ACETAMINOPHEN_500MG, frozenset({"analgesic-expectations"})),
            ),
        ),
        SandboxPatient(
            id="aimss-hand",
            name="Grace Trigger",
            story="On letrozole 2.5 years; trigger finger and right-hand joint pain coded, "
            "overall pain 0/10 today; in a supervised exercise program.",
            expected=frozenset({"hand-wrist", "exercise"}),
            resources=(
                medication_statement("aimss-hand", "aimss-hand-ai", LETROZOLE_2_5MG, months(30)),
                condition("aimss-hand", "aimss-hand-trigger", SNOMED, TRIGGER_FINGER, months(3)),
                condition("aimss-hand", "aimss-hand-pain", ICD10, JOINT_PAIN_HANDS, months(3)),
                pain("aimss-hand", "aimss-hand-nrs", days(20), 0),
                referral("aimss-hand", "aimss-hand-exercise", EXERCISE_REFERRAL, months(2)),
                dxa_procedure("aimss-hand", "aimss-hand-dxa", months(8)),
                medication_statement("aimss-hand", "aimss-hand-calcium", CALCIUM_CARBONATE, months(20)),
                *normal_labs("aimss-hand", today),
            ),
        ),
        SandboxPatient(
            id="aimss-depression",
            name="Helen Lowmood",
            story="On anastrozole 1 year; coded depression, PHQ-9 14 two months ago, joint pain 5/10; "
            "TSH and vitamin D not checked; already in physical therapy.",
            expected=frozenset({"duloxetine", "exercise", "contributing-factors"}),
            resources=(
                medication_statement("aimss-depression", "aimss-depression-ai", ANASTROZOLE_1MG, months(12)),
                condition("aimss-depression", "aimss-depression-dx", ICD10, DEPRESSION, months(6)),
                observation("aimss-depression", "aimss-depression-phq9", PHQ9, months(2), 14, "{score}"),
                pain("aimss-depression", "aimss-depression-nrs", days(12), 5),
                referral("aimss-depression", "aimss-depression-pt", PT_REFERRAL, months(1)),
                *bone_health_in_order("aimss-depression", today, months(12)),
            ),
        ),
        SandboxPatient(
            id="aimss-persisting",
            name="Irene Persist",
            story="On letrozole 18 months; pain 5/10 ten weeks ago and 6/10 now despite duloxetine, "
            "physical therapy and an exercise program.",
            expected=frozenset({"switch-therapy", "exercise"}),
            resources=(
                medication_request("aimss-persisting", "aimss-persisting-ai", LETROZOLE_2_5MG, months(18)),
                medication_statement("aimss-persisting", "aimss-persisting-dlx", DULOXETINE_30MG, months(4)),
                pain("aimss-persisting", "aimss-persisting-nrs-1", days(70), 5),
                pain("aimss-persisting", "aimss-persisting-nrs-2", days(4), 6),
                referral("aimss-persisting", "aimss-persisting-pt", PT_REFERRAL, months(3)),
                referral("aimss-persisting", "aimss-persisting-ex", EXERCISE_REFERRAL, months(3)),
                *bone_health_in_order("aimss-persisting", today, months(18)),
                *normal_labs("aimss-persisting", today),
            ),
        ),
        SandboxPatient(
            id="aimss-worsening",
            name="Joan Rising",
            story="On exemestane 2 years; pain rose from 2/10 four months ago to 5/10 now while on "
            "acetaminophen.",
            expected=frozenset({"red-flags", "exercise", "duloxetine", "analgesic-expectations"}),
            resources=(
                medication_statement("aimss-worsening", "aimss-worsening-ai", EXEMESTANE_25MG, months(24)),
                medication_statement("aimss-worsening", "aimss-worsening-apap", ACETAMINOPHEN_500MG, months(5)),
                pain("aimss-worsening", "aimss-worsening-nrs-1", days(120), 2),
                pain("aimss-worsening", "aimss-worsening-nrs-2", days(3), 5),
                *bone_health_in_order("aimss-worsening", today, months(24)),
                *normal_labs("aimss-worsening", today),
            ),
        ),
        SandboxPatient(
            id="aimss-on-hold",
            name="Kate Paused",
            story="Anastrozole on hold since the patient paused it for joint pain (6/10 three weeks "
            "ago); on phenelzine.",
            expected=frozenset({"adherence"}),
            resources=(
                medication_statement("aimss-on-hold", "aimss-on-hold-ai", ANASTROZOLE_1MG, months(9), "on-hold")
                | {"statusReason": [{"text": "Paused by the patient: joint pain"}]},
                medication_statement("aimss-on-hold", "aimss-on-hold-maoi", PHENELZINE_15MG, months(12)),
                pain("aimss-on-hold", "aimss-on-hold-nrs", days(21), 6),
            ),
            drafts=(
                SandboxDraft("draft-duloxetine-maoi", "aimss-on-hold", "Duloxetine 30 mg daily",
                             DULOXETINE_30MG, frozenset({"serotonergic-interaction"})),
            ),
        ),
        SandboxPatient(
            id="aimss-osteoporosis",
            name="Laura Bone",
            story="On letrozole 3 years; lumbar spine T-score -2.6 four months ago, osteoporosis "
            "coded; on calcium and vitamin D but no bisphosphonate; no joint pain.",
            expected=frozenset({"bone-protection"}),
            resources=(
                medication_statement("aimss-osteoporosis", "aimss-osteoporosis-ai", LETROZOLE_2_5MG, months(36)),
                observation("aimss-osteoporosis", "aimss-osteoporosis-t", DXA_SPINE_T, months(4), -2.6, "{T-score}"),
                condition("aimss-osteoporosis", "aimss-osteoporosis-dx", SNOMED, OSTEOPOROSIS, months(4)),
                medication_statement("aimss-osteoporosis", "aimss-osteoporosis-ca", CALCIUM_CARBONATE, months(30)),
                medication_statement("aimss-osteoporosis", "aimss-osteoporosis-d3", CHOLECALCIFEROL, months(30)),
                pain("aimss-osteoporosis", "aimss-osteoporosis-nrs", days(30), 0),
                *normal_labs("aimss-osteoporosis", today),
            ),
        ),
        SandboxPatient(
            id="aimss-sparse",
            name="Mia Newchart",
            story="Almost no data: a new chart with only a breast-cancer diagnosis.",
            expected=frozenset(),
            resources=(
                condition("aimss-sparse", "aimss-sparse-dx", ICD10, BREAST_CANCER, months(1)),
            ),
            drafts=(
                SandboxDraft("draft-letrozole", "aimss-sparse", "Letrozole 2.5 mg daily",
                             LETROZOLE_2_5MG, frozenset({"ai-start-bone-health"})),
            ),
        ),
    ]


def sandbox_drafts(patients: list[SandboxPatient]) -> list[SandboxDraft]:
    return [draft for patient in patients for draft in patient.drafts]
