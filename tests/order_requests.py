"""Order-time hook requests exactly as real clients send them, for the conformance tests.

Two senders (``../shared/reference/sandbox-client.md`` §2.2 and the CDS Hooks 2.0 hook library):
- The public CDS Hooks Sandbox, Rx Sign screen: ``order-sign`` with context
  ``{patientId, userId, draftOrders}`` and no ``selections``; one R4 MedicationRequest with the
  fixed id ``request-123``, a ``Bundle`` without ``type``, no ``encounterId``, no
  ``fhirAuthorization``, ``userId`` ``Practitioner/COREPRACTITIONER1``. The drug is a single
  RxNorm coding from its bundled medication list (``text`` and ``display`` both the RxNorm name);
  before a drug is chosen the draft holds only ``resourceType/id/status/subject/authoredOn``.
- An EHR signing an order set: every draft of the set in one ``order-sign`` call, a
  ``collection`` Bundle, an ``encounterId``, and drafts that carry more than one coding of the
  drug (product and ingredient).
"""

from __future__ import annotations

from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SANDBOX_USER = "Practitioner/COREPRACTITIONER1"
SANDBOX_DRAFT_ID = "request-123"
SANDBOX_HOOK_INSTANCE = "5f0c2a86-9d55-4b7e-8c0b-3f3c1e6a9b21"
Resource = dict[str, Any]


def sandbox_rx_draft(
    rxcui: str, name: str, patient_id: str = "pat-1", authored: str = "2026-11-21"
) -> Resource:
    """The Rx Sign draft for an R4 server (``fhirVersion`` >= 4.0.0: ``doseAndRate``)."""
    return {
        "resourceType": "MedicationRequest",
        "id": SANDBOX_DRAFT_ID,
        "status": "draft",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": authored,
        "dosageInstruction": [{
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {
                "value": 1, "system": "http://unitsofmeasure.org", "code": "{pill}",
            }}],
        }],
        "dispenseRequest": {"expectedSupplyDuration": {
            "value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d",
        }},
        "intent": "order",
        "category": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "code": "community",
        }]},
        "medicationCodeableConcept": {
            "text": name,
            "coding": [{"display": name, "system": RXNORM, "code": rxcui}],
        },
    }


def sandbox_rx_draft_without_drug(patient_id: str = "pat-1", authored: str = "2026-11-21") -> Resource:
    """Rx Sign with the medication field still empty."""
    return {
        "resourceType": "MedicationRequest",
        "id": SANDBOX_DRAFT_ID,
        "status": "draft",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": authored,
    }


def sandbox_order_sign(draft: Resource, patient_id: str = "pat-1", **fields: Any) -> dict[str, Any]:
    """The whole Rx Sign body: no selections, a Bundle without ``type``, no encounter."""
    return {
        "hookInstance": SANDBOX_HOOK_INSTANCE,
        "hook": "order-sign",
        "context": {
            "patientId": patient_id,
            "userId": SANDBOX_USER,
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]},
        },
        **fields,
    }


def ehr_draft(
    resource_id: str, codings: list[tuple[str, str]], text: str, patient_id: str = "pat-1"
) -> Resource:
    """One draft of an EHR order set: RxNorm product and ingredient codings, structured dose."""
    return {
        "resourceType": "MedicationRequest",
        "id": resource_id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": "Encounter/enc-7"},
        "requester": {"reference": "Practitioner/prac-22"},
        "authoredOn": "2026-11-21T10:14:00Z",
        "medicationCodeableConcept": {
            "text": text,
            "coding": [{"system": RXNORM, "code": code, "display": display} for code, display in codings],
        },
        "dosageInstruction": [{
            "text": "1 tablet by mouth daily",
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"}]},
            "doseAndRate": [{"doseQuantity": {
                "value": 1, "unit": "tablet", "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                "code": "TAB",
            }}],
        }],
    }


def ehr_order_sign(drafts: list[Resource], patient_id: str = "pat-1", **fields: Any) -> dict[str, Any]:
    """An EHR signing an order set: every draft in one call, with the encounter."""
    return {
        "hookInstance": "0e5d3b7a-62c4-4f0a-9d1e-7b2f8a4c6d90",
        "hook": "order-sign",
        "context": {
            "userId": "Practitioner/prac-22",
            "patientId": patient_id,
            "encounterId": "enc-7",
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": draft} for draft in drafts],
            },
        },
        **fields,
    }
