"""Interventions in place: referrals (ServiceRequest) and procedures of exercise, physical
therapy or acupuncture, within the lookback window."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date

from cds_service.clinical.facts.model import INTERVENTION_SETS, Record, unverified
from cds_service.fhir.resources import Resource, codings, concept_text, first_date, reference_key
from cds_service.knowledge.loader import Knowledge


def recent_interventions(
    by_type: Mapping[str, list[Resource]], knowledge: Knowledge, since: date
) -> Iterator[Record]:
    for kind, date_fields, valid in (
        ("ServiceRequest", ("occurrenceDateTime", "occurrencePeriod.start", "authoredOn"),
         {"active", "completed", "on-hold"}),
        ("Procedure", ("performedDateTime", "performedPeriod.start"), {"completed", "in-progress"}),
    ):
        for resource in by_type.get(kind, []):
            if resource.get("status") not in valid:
                continue
            matches = [
                m for m in knowledge.matches(codings(resource.get("code"))) if m.valueset in INTERVENTION_SETS
            ]
            when = first_date(resource, *date_fields)
            if not matches or (when is not None and when < since):
                continue
            yield Record(
                frozenset(m.valueset for m in matches),
                concept_text(resource.get("code")) or matches[0].display,
                when, reference_key(resource) or kind, unverified(matches),
            )
