"""Drugs of interest: MedicationStatement or MedicationRequest, with inline, contained or
referenced Medications (and their ingredients); and the drafts of an order-select call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cds_service.clinical.facts.model import DraftedOrder, MedicationUse, unverified
from cds_service.fhir.resources import Resource, codings, concept_text, first_date, reference_key
from cds_service.knowledge.loader import Knowledge

_STATEMENT_STATUS = {
    "active": "active", "intended": "active", "on-hold": "on-hold", "stopped": "stopped",
    "completed": "completed", "not-taken": "not-taken", "unknown": "unknown",
}
_REQUEST_STATUS = {
    "active": "active", "on-hold": "on-hold", "stopped": "stopped", "cancelled": "stopped",
    "completed": "completed", "unknown": "unknown",
}
_NOT_A_USE_INTENT = {"proposal", "option", "directive"}


def medication_use(
    resource: Resource, knowledge: Knowledge, medications: Mapping[str, Resource]
) -> MedicationUse | None:
    kind = resource.get("resourceType")
    if kind == "MedicationStatement":
        status = _STATEMENT_STATUS.get(resource.get("status", ""))
        start = first_date(resource, "effectivePeriod.start", "effectiveDateTime", "dateAsserted")
        end = first_date(resource, "effectivePeriod.end")
        reasons = resource.get("statusReason") or []
    else:
        if resource.get("intent") in _NOT_A_USE_INTENT:
            return None
        status = _REQUEST_STATUS.get(resource.get("status", ""))
        start = first_date(resource, "authoredOn")
        validity = (resource.get("dispenseRequest") or {}).get("validityPeriod")
        end = first_date({"v": validity}, "v.end") if isinstance(validity, Mapping) else None
        reasons = [resource["statusReason"]] if isinstance(resource.get("statusReason"), Mapping) else []
    if status is None:
        return None
    concept, name = _medication_concept(resource, medications)
    matches = knowledge.matches(codings(concept))
    if not matches:
        return None
    reason_texts = [t for r in reasons if (t := concept_text(r))]
    reason_matches = knowledge.matches(c for r in reasons for c in codings(r))
    return MedicationUse(
        groups=frozenset(m.valueset for m in matches),
        name=name or matches[0].display,
        status=status,
        start=start,
        end=end,
        source=reference_key(resource) or str(kind),
        unverified_codes=unverified(matches),
        status_reason="; ".join(reason_texts) or None,
        status_reason_groups=frozenset(m.valueset for m in reason_matches),
    )


def _medication_concept(
    resource: Resource, medications: Mapping[str, Resource]
) -> tuple[dict[str, Any], str | None]:
    """The drug's codings: inline, or from a contained or referenced Medication (with ingredients)."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, Mapping):
        return dict(concept), concept_text(concept)
    reference = (resource.get("medicationReference") or {}).get("reference", "")
    medication: Resource | None = None
    if isinstance(reference, str) and reference.startswith("#"):
        medication = next(
            (c for c in resource.get("contained", []) if c.get("id") == reference[1:]), None
        )
    elif isinstance(reference, str):
        medication = medications.get(reference)
    if medication is None:
        return {}, None
    all_codings = list(codings(medication.get("code")))
    for ingredient in medication.get("ingredient", []):
        all_codings += codings(ingredient.get("itemCodeableConcept"))
    return {"coding": all_codings}, concept_text(medication.get("code"))


def drafted_orders(
    entries: Iterable[Mapping[str, Any]], selections: Iterable[str], knowledge: Knowledge
) -> tuple[DraftedOrder, ...]:
    selected = set(selections)
    drafts = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or reference_key(resource) not in selected:
            continue
        concept = resource.get("medicationCodeableConcept")
        matches = knowledge.matches(codings(concept))
        if matches:
            drafts.append(DraftedOrder(
                str(reference_key(resource)), concept_text(concept) or matches[0].display,
                frozenset(m.valueset for m in matches), unverified(matches),
            ))
    return tuple(drafts)
