"""Coded conditions that are active and not refuted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cds_service.clinical.facts.model import Record, unverified
from cds_service.fhir.resources import Resource, codings, concept_text, first_date, reference_key
from cds_service.knowledge.loader import Knowledge

_INACTIVE_CONDITION = {"inactive", "remission", "resolved"}


def active_conditions(conditions: Iterable[Resource], knowledge: Knowledge) -> Iterator[Record]:
    for condition in conditions:
        clinical = {c.get("code") for c in codings(condition.get("clinicalStatus"))}
        verification = {c.get("code") for c in codings(condition.get("verificationStatus"))}
        if clinical & _INACTIVE_CONDITION or verification & {"refuted", "entered-in-error"}:
            continue
        matches = knowledge.matches(codings(condition.get("code")))
        if not matches:
            continue
        yield Record(
            frozenset(m.valueset for m in matches),
            concept_text(condition.get("code")) or matches[0].display,
            first_date(condition, "onsetDateTime", "onsetPeriod.start", "recordedDate"),
            reference_key(condition) or "Condition",
            unverified(matches),
        )
