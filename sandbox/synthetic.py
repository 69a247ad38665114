"""Synthetic patients as FHIR R4 transaction bundles, dated relative to ``today``.

Each patient exists to show (or not show) particular cards; ``SandboxPatient.expected``
names the topics the service must answer with on patient-view, so the sandbox and the tests
share one definition of "right".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from cds_service.dates import months_before

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

Resource = dict[str, Any]


@dataclass(frozen=True)
class SandboxPatient:
    id: str
    name: str
    story: str
    expected: frozenset[str]
    resources: tuple[Resource, ...]

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
    patient: str, rid: str, rxnorm: tuple[str, str], start: date, status: str = "active"
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
    patient: str, rid: str, rxnorm: tuple[str, str], authored: date, status: str = "active"
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
    patient: str, rid: str, loinc: tuple[str, str], when: date, value: float, unit: str
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


ANASTROZOLE_1MG = ("199224", "anastrozole 1 MG Oral Tablet")
LETROZOLE_2_5MG = ("200064", "letrozole 2.5 MG Oral Tablet")
TAMOXIFEN_10MG = ("198240", "tamoxifen 10 MG Oral Tablet")
DXA_FEMUR_T = ("38263-0", "DXA Femur [T-score] Bone density")


def sandbox_patients(today: date) -> list[SandboxPatient]:
    return [
        SandboxPatient(
            id="aimss-no-dxa",
            name="Alice Anastrozole",
            story="On anastrozole for 8 months; no DXA, pain score or calcium on record.",
            expected=frozenset({"bone-density-scan", "symptom-assessment", "bone-protection"}),
            resources=(
                medication_statement(
                    "aimss-no-dxa", "aimss-no-dxa-ai", ANASTROZOLE_1MG, months_before(today, 8)
                ),
            ),
        ),
        SandboxPatient(
            id="aimss-recent-dxa",
            name="Beth Letrozole",
            story="On letrozole for 14 months (a MedicationRequest); first DXA only 5 months ago "
            "(T-score -1.2), so no baseline near the AI start.",
            expected=frozenset({"bone-density-scan", "symptom-assessment", "bone-protection"}),
            resources=(
                medication_request(
                    "aimss-recent-dxa", "aimss-recent-dxa-ai", LETROZOLE_2_5MG,
                    months_before(today, 14),
                ),
                observation(
                    "aimss-recent-dxa", "aimss-recent-dxa-t", DXA_FEMUR_T,
                    months_before(today, 5), -1.2, "{T-score}",
                ),
            ),
        ),
        SandboxPatient(
            id="aimss-old-dxa",
            name="Carol Oldscan",
            story="On anastrozole for 3 years; last DXA 30 months ago; no pain score or calcium.",
            expected=frozenset({"bone-density-scan", "symptom-assessment", "bone-protection"}),
            resources=(
                medication_statement(
                    "aimss-old-dxa", "aimss-old-dxa-ai", ANASTROZOLE_1MG, months_before(today, 36)
                ),
                observation(
                    "aimss-old-dxa", "aimss-old-dxa-t", DXA_FEMUR_T,
                    months_before(today, 30), -1.6, "{T-score}",
                ),
            ),
        ),
        SandboxPatient(
            id="aimss-no-ai",
            name="Dana Tamoxifen",
            story="On tamoxifen, never on an aromatase inhibitor: no AIMSS cards.",
            expected=frozenset(),
            resources=(
                medication_statement(
                    "aimss-no-ai", "aimss-no-ai-tam", TAMOXIFEN_10MG,
                    today - timedelta(days=400),
                ),
            ),
        ),
    ]
