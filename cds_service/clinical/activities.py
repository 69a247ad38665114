"""Instantiate ActivityDefinitions as the draft R4 orders a suggestion proposes."""

from __future__ import annotations

from datetime import date
from typing import Any


def instantiate(definition: dict[str, Any], patient_id: str, today: date) -> dict[str, Any]:
    """A draft ServiceRequest or MedicationRequest for this patient, as the definition describes."""
    common = {
        "status": "draft",
        "intent": definition.get("intent", "order"),
        "instantiatesCanonical": [definition["url"]],
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": today.isoformat(),
    }
    if definition["kind"] == "ServiceRequest":
        resource = {"resourceType": "ServiceRequest", **common, "code": definition["code"]}
        for source, target in (("priority", "priority"), ("bodySite", "bodySite"),
                               ("quantity", "quantityQuantity"), ("timingTiming", "occurrenceTiming")):
            if source in definition:
                resource[target] = definition[source]
        return resource
    if definition["kind"] == "MedicationRequest":
        resource = {
            "resourceType": "MedicationRequest",
            **common,
            "medicationCodeableConcept": definition["productCodeableConcept"],
        }
        if "dosage" in definition:
            resource["dosageInstruction"] = definition["dosage"]
        return resource
    raise ValueError(f"ActivityDefinition {definition['url']} has unsupported kind {definition['kind']}")
