"""Drugs of interest: MedicationStatement or MedicationRequest, with inline, contained or
referenced Medications (their ingredients when the product code is unknown); and the drafts
of an order-select call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cds_service.clinical.facts.model import DraftedOrder, MedicationUse, unverified
from cds_service.fhir.resources import (
    Resource,
    codings,
    concept_text,
    first_date,
    reference_key,
    reference_target,
)
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
        point_in_time = "effectiveDateTime" in resource
        planned = float((end - start).days + 1) if start and end else None
    else:
        if resource.get("intent") in _NOT_A_USE_INTENT:
            return None
        status = _REQUEST_STATUS.get(resource.get("status", ""))
        start = first_date(resource, "authoredOn")
        validity = (resource.get("dispenseRequest") or {}).get("validityPeriod")
        end = first_date({"v": validity}, "v.end") if isinstance(validity, dict) else None
        reasons = [resource["statusReason"]] if isinstance(resource.get("statusReason"), dict) else []
        point_in_time = True
        planned = _planned_days(resource)
    if status is None:
        return None
    product, ingredients, name = _medication_codings(resource, medications)
    matches = knowledge.matches(product) or knowledge.matches(ingredients)
    if not matches:
        return None
    reason_texts = [t for r in reasons if (t := concept_text(r))]
    reason_matches = knowledge.matches(c for r in reasons for c in codings(r))
    why = knowledge.matches(c for r in resource.get("reasonCode") or [] for c in codings(r))
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
        reason_groups=frozenset(m.valueset for m in why),
        planned_days=planned,
        point_in_time=point_in_time,
    )


_DAYS = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "weeks": 7, "mo": 30, "month": 30, "months": 30}


def _planned_days(request: Resource) -> float | None:
    """The planned length of a MedicationRequest: its expected supply duration, else the
    longest timing bound of its dosage; ``None`` when neither is given in days, weeks or months."""
    durations = [(request.get("dispenseRequest") or {}).get("expectedSupplyDuration")]
    if not isinstance(durations[0], dict):
        durations = [
            ((dosage.get("timing") or {}).get("repeat") or {}).get("boundsDuration")
            for dosage in request.get("dosageInstruction") or [] if isinstance(dosage, dict)
        ]
    days = [
        float(d["value"]) * _DAYS[unit] for d in durations
        if isinstance(d, dict) and isinstance(d.get("value"), int | float)
        and (unit := str(d.get("code") or d.get("unit") or "")) in _DAYS
    ]
    return max(days, default=None)


Codings = list[Mapping[str, Any]]


def _medication_codings(
    resource: Resource, medications: Mapping[str, Resource]
) -> tuple[Codings, Codings, str | None]:
    """The drug's own codings, its ingredients' codings and its name: inline, or from a
    contained or referenced Medication. Ingredients count only when no product coding is known
    (an obsolete product code), so a known product is never re-read as its ingredient (a
    vaginal estradiol cream is not systemic estradiol)."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return codings(concept), [], concept_text(concept)
    reference = (resource.get("medicationReference") or {}).get("reference")
    medication: Resource | None = None
    if isinstance(reference, str) and reference.startswith("#"):
        medication = next(
            (c for c in resource.get("contained") or [] if c.get("id") == reference[1:]), None
        )
    elif (target := reference_target(reference)) is not None:
        medication = medications.get(target)
    if medication is None:
        return [], [], None
    ingredients = [
        coding
        for ingredient in medication.get("ingredient") or []
        for coding in codings(ingredient.get("itemCodeableConcept"))
    ]
    return codings(medication.get("code")), ingredients, concept_text(medication.get("code"))


def drafted_orders(
    entries: Iterable[Mapping[str, Any]], selections: Iterable[str] | None, knowledge: Knowledge
) -> tuple[DraftedOrder, ...]:
    """The drafts with a drug we know: those in ``selections`` (order-select), or every draft
    when there are none to select from (order-sign signs them all)."""
    selected = None if selections is None else set(selections)
    drafts = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        if selected is not None and reference_key(resource) not in selected:
            continue
        concept = resource.get("medicationCodeableConcept")
        matches = knowledge.matches(codings(concept))
        if matches:
            drafts.append(DraftedOrder(
                str(reference_key(resource)), concept_text(concept) or matches[0].display,
                frozenset(m.valueset for m in matches), unverified(matches),
                tuple(sorted({f"{m.system}|{m.code}" for m in matches})),
            ))
    return tuple(drafts)
