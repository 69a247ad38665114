"""The gather/facts boundary: wrongly typed FHIR JSON costs only the key that carried it.

The facts read FHIR JSON as the spec shapes it and raise on an element of the wrong type. When
that happens, each key's resources are read alone; the keys that fail are marked unavailable
(``malformed_content``), so the other keys' data is kept and the cards say data was incomplete.
"""

from __future__ import annotations

from datetime import date

from cds_service.clinical.facts import PatientFacts, extract_facts
from cds_service.fhir.gather import Gathered
from cds_service.knowledge.loader import Knowledge
from cds_service.hooks.services import CdsService

MALFORMED_DATA = (AttributeError, TypeError, ValueError, KeyError)
"""What the pure core raises on wrongly typed FHIR JSON."""


def read_facts(
    gathered: Gathered, service: CdsService, knowledge: Knowledge, today: date
) -> PatientFacts:
    """Facts of every readable key; raises ``MALFORMED_DATA`` only if keys fail together."""

    def facts() -> PatientFacts:
        unavailable = service.sources_of(gathered.unavailable)
        return extract_facts(gathered.all_resources(), knowledge, today, unavailable)

    try:
        return facts()
    except MALFORMED_DATA:
        for key, resources in list(gathered.resources.items()):
            try:
                extract_facts(resources, knowledge, today)
            except MALFORMED_DATA:
                del gathered.resources[key]
                gathered.unavailable[key] = "malformed_content"
        return facts()
