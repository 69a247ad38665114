"""Coded conditions that are current: not resolved, refuted or entered in error.

A Condition with a clinical status is current while that status says so. One without (FHIR R4
allows it for a point-in-time encounter diagnosis; con-3) is a diagnosis made on a date: it
counts while its onset or recording falls in the lookback window, like a score, and not once
abated (con-4) or when undated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

from cds_service.clinical.facts.model import Record, unverified
from cds_service.fhir.resources import Resource, codings, concept_text, first_date, reference_key
from cds_service.knowledge.loader import Knowledge

_INACTIVE_CONDITION = {"inactive", "remission", "resolved"}


def active_conditions(
    conditions: Iterable[Resource], knowledge: Knowledge, since: date
) -> Iterator[Record]:
    for condition in conditions:
        clinical = {c.get("code") for c in codings(condition.get("clinicalStatus"))}
        verification = {c.get("code") for c in codings(condition.get("verificationStatus"))}
        if clinical & _INACTIVE_CONDITION or verification & {"refuted", "entered-in-error"}:
            continue
        when = first_date(condition, "onsetDateTime", "onsetPeriod.start", "recordedDate")
        if not clinical and not _recent_diagnosis(condition, since):
            continue
        matches = knowledge.matches(codings(condition.get("code")))
        if not matches:
            continue
        yield Record(
            frozenset(m.valueset for m in matches),
            concept_text(condition.get("code")) or matches[0].display,
            when,
            reference_key(condition) or "Condition",
            unverified(matches),
        )


def _recent_diagnosis(condition: Resource, since: date) -> bool:
    """Not abated, and its onset or the day it was recorded falls in the lookback window."""
    if any(name.startswith("abatement") and value not in (None, False)
           for name, value in condition.items()):
        return False
    dates = (first_date(condition, name) for name in ("onsetDateTime", "onsetPeriod.start", "recordedDate"))
    return any(d is not None and d >= since for d in dates)
