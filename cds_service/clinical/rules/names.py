"""How a card names what the chart records: drugs without their strength, coded findings
without SNOMED's semantic tag, so a plan card fits one screen."""

from __future__ import annotations

import re
from collections.abc import Iterable

from cds_service.clinical.facts.model import MedicationUse, Record

_SEMANTIC_TAG = re.compile(r"\s*\((disorder|finding|procedure|regime/therapy|situation|observable entity)\)$")


def plain(name: str) -> str:
    """A coded display without SNOMED's semantic tag: "Trigger finger", not "... (disorder)"."""
    return _SEMANTIC_TAG.sub("", name)


def drug(use: MedicationUse) -> str:
    """A drug as a card names it: the name before its strength ("tramadol hydrochloride")."""
    return re.split(r"\s+\d", use.name, maxsplit=1)[0] or use.name


def names(items: Iterable[MedicationUse | Record]) -> tuple[str, ...]:
    """Distinct names, in order."""
    return tuple(dict.fromkeys(drug(i) if isinstance(i, MedicationUse) else plain(i.name) for i in items))
