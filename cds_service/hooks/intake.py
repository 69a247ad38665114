"""The facts step: wrongly typed FHIR JSON costs only the key that carried it.

The facts read FHIR JSON as the spec shapes it and raise on an element of the wrong type. When
that happens, each key's resources are read alone; the keys that fail are marked unavailable
(``malformed_content``), so the other keys' data is kept and the cards say data was incomplete.
This is the only place where malformed client data is tolerated: an exception in the rules or
the cards is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.clinical.facts import extract_facts
from cds_service.clinical.facts.model import PatientFacts
from cds_service.fhir.gather import Gathered
from cds_service.hooks.services import CdsService
from cds_service.knowledge.loader import Knowledge

MALFORMED_DATA = (AttributeError, TypeError, ValueError, KeyError)
"""What the pure core raises on wrongly typed FHIR JSON."""


class MalformedData(Exception):
    """Keys failed together: no facts could be read. Carries the error's type, never its text."""

    def __init__(self, error_type: str, unavailable: dict[str, str]) -> None:
        super().__init__(error_type)
        self.error_type = error_type
        self.unavailable = unavailable


@dataclass(frozen=True)
class Intake:
    """The facts, and every key unavailable to them: gather's, plus those with malformed content."""

    facts: PatientFacts
    unavailable: dict[str, str]


def read_facts(
    gathered: Gathered, service: CdsService, knowledge: Knowledge, today: date
) -> Intake:
    """Facts of every readable key; raises ``MalformedData`` only if keys fail together."""
    try:
        return _intake(gathered.resources, gathered.unavailable, service, knowledge, today)
    except MALFORMED_DATA:
        malformed = [
            key for key, resources in gathered.resources.items()
            if not _readable(resources, knowledge, today)
        ]
        kept = {k: found for k, found in gathered.resources.items() if k not in malformed}
        unavailable = gathered.unavailable | dict.fromkeys(malformed, "malformed_content")
        try:
            return _intake(kept, unavailable, service, knowledge, today)
        except MALFORMED_DATA as error:
            raise MalformedData(type(error).__name__, unavailable) from None


def _intake(
    resources: dict[str, list[dict[str, object]]],
    unavailable: dict[str, str],
    service: CdsService,
    knowledge: Knowledge,
    today: date,
) -> Intake:
    everything = [resource for found in resources.values() for resource in found]
    facts = extract_facts(everything, knowledge, today, service.sources_of(unavailable))
    return Intake(facts, dict(unavailable))


def _readable(resources: list[dict[str, object]], knowledge: Knowledge, today: date) -> bool:
    try:
        extract_facts(resources, knowledge, today)
    except MALFORMED_DATA:
        return False
    return True
