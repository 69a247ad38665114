"""DXA tests: result Observations (with their T-scores), DiagnosticReports and Procedures."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from cds_service.clinical.facts.model import BoneDensityTest, Coded, unverified
from cds_service.clinical.facts.observations import numeric_value, observation_date
from cds_service.fhir.resources import Resource, codings, concept_text, first_date, reference_key
from cds_service.knowledge.loader import Knowledge


def bone_density_tests(
    by_type: Mapping[str, list[Resource]], dxa_results: Iterable[Coded], knowledge: Knowledge
) -> Iterator[BoneDensityTest]:
    for observation, matches in dxa_results:
        when = observation_date(observation)
        if when is None:
            continue
        t_score = numeric_value(observation) if any(m.valueset == "dxa-t-scores" for m in matches) else None
        yield BoneDensityTest(
            when, reference_key(observation) or "Observation",
            concept_text(observation.get("code")) or matches[0].display, t_score,
            unverified(matches), matches[0].code,
        )
    for kind, date_fields, valid in (
        ("Procedure", ("performedDateTime", "performedPeriod.start", "performedPeriod.end"),
         {"completed"}),
        ("DiagnosticReport",
         ("effectiveDateTime", "effectivePeriod.start", "effectivePeriod.end", "issued"),
         {"final", "amended", "corrected", "appended", "preliminary", "partial"}),
    ):
        for resource in by_type.get(kind, []):
            if resource.get("status") not in valid:
                continue
            matches = knowledge.matches(codings(resource.get("code")))
            if not any(m.valueset in ("dxa-procedures", "dxa-results") for m in matches):
                continue
            when = first_date(resource, *date_fields)
            if when is not None:
                yield BoneDensityTest(
                    when, reference_key(resource) or kind,
                    concept_text(resource.get("code")) or matches[0].display, None,
                    unverified(matches),
                )
