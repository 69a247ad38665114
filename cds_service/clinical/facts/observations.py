"""Observations as dated numbers: pain scores, BPI interference, labs, with units and flags.

Numbers come as valueQuantity, valueInteger, valueDecimal or a numeric valueCodeableConcept or
valueString; dates as dateTime, Period (start, else end) or instant. A panel's components are
read as Observations of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date

from cds_service.clinical.facts.model import Coded, Measurement, unverified
from cds_service.fhir.resources import Resource, codings, concept_text, first_date, reference_key
from cds_service.knowledge.loader import Knowledge

_VOID = {"entered-in-error", "cancelled", "registered", "revoked", "not-done"}
_ABNORMAL_FLAGS = {"H", "HH", "HU", "L", "LL", "LU", "A", "AA"}
_LOW_FLAGS = {"L", "LL", "LU"}
NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


def observations_by_valueset(
    observations: Iterable[Resource], knowledge: Knowledge
) -> dict[str, list[Coded]]:
    """Each valid Observation under every value set its code is in, its code matched once.

    A chart holds a year of scores and labs; matching every Observation once, rather than once
    per fact, is most of what keeps a hook call within its latency target.
    """
    index: dict[str, list[Coded]] = {}
    for panel in observations:
        if panel.get("status") in _VOID:
            continue
        for observation in _with_components(panel):
            matches = knowledge.matches(codings(observation.get("code")))
            for valueset in {m.valueset for m in matches}:
                index.setdefault(valueset, []).append((observation, matches))
    return index


_OWN_FIELDS = ("code", "component", "interpretation", "referenceRange", "dataAbsentReason")


def _with_components(observation: Resource) -> Iterator[Resource]:
    """The Observation, then each of its components as an Observation of its own (a DXA panel
    holds its per-site T-scores so): status, subject, date and id are the panel's, so evidence
    names the panel; code, value and interpretation are the component's."""
    yield observation
    components = observation.get("component")
    if not components:
        return
    shared = {
        k: v for k, v in observation.items() if k not in _OWN_FIELDS and not k.startswith("value")
    }
    for component in components:
        yield shared | dict(component)


def recent(measurements: Iterable[Measurement], since: date) -> tuple[Measurement, ...]:
    """Measurements in the lookback window, oldest first."""
    return tuple(sorted((m for m in measurements if m.when >= since), key=lambda m: m.when))


def numeric_value(resource: Resource) -> float | None:
    """valueQuantity, valueInteger, valueDecimal, or a numeric valueCodeableConcept/valueString."""
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        return float(quantity["value"])
    for name in ("valueInteger", "valueDecimal"):
        if isinstance(resource.get(name), int | float) and not isinstance(resource.get(name), bool):
            return float(resource[name])
    candidates = [resource.get("valueString")]
    concept = resource.get("valueCodeableConcept")
    if isinstance(concept, dict):
        candidates += [concept.get("text"), *(c.get("code") for c in codings(concept))]
    for candidate in candidates:
        if isinstance(candidate, str) and NUMBER.match(candidate):
            return float(candidate)
    return None


def observation_date(observation: Resource) -> date | None:
    return first_date(
        observation, "effectiveDateTime", "effectivePeriod.start", "effectivePeriod.end",
        "effectiveInstant", "issued",
    )


def measurements_in(observations: Iterable[Coded], valueset: str) -> Iterator[Measurement]:
    """The dated numbers of Observations coded in ``valueset``."""
    for observation, all_matches in observations:
        matches = [m for m in all_matches if m.valueset == valueset]
        when, value = observation_date(observation), numeric_value(observation)
        if when is None or value is None:
            continue
        yield Measurement(
            when, value, concept_text(observation.get("code")) or matches[0].display,
            reference_key(observation) or "Observation", unverified(matches),
            _abnormal(observation, value), matches[0].code, _low(observation, value),
        )


def _abnormal(observation: Resource, value: float) -> bool | None:
    """From the lab's own interpretation or reference range; ``None`` when it gives neither."""
    for interpretation in observation.get("interpretation") or []:
        for coding in codings(interpretation):
            if coding.get("code") in _ABNORMAL_FLAGS:
                return True
            if coding.get("code") == "N":
                return False
    for reference_range in observation.get("referenceRange") or []:
        low = (reference_range.get("low") or {}).get("value")
        high = (reference_range.get("high") or {}).get("value")
        if isinstance(low, int | float) or isinstance(high, int | float):
            return (isinstance(low, int | float) and value < low) or (
                isinstance(high, int | float) and value > high
            )
    return None


def _low(observation: Resource, value: float) -> bool | None:
    """Below the lab's range, from its interpretation or reference range; ``None`` when it gives neither."""
    for interpretation in observation.get("interpretation") or []:
        codes = {coding.get("code") for coding in codings(interpretation)}
        if codes & _LOW_FLAGS:
            return True
        if codes & (_ABNORMAL_FLAGS | {"N"}):
            return False
    for reference_range in observation.get("referenceRange") or []:
        low = (reference_range.get("low") or {}).get("value")
        if isinstance(low, int | float):
            return value < low
    return None


def vitamin_d(observations: Iterable[Coded]) -> Iterator[Measurement]:
    """25-OH vitamin D in ng/mL; results in nmol/L are divided by 2.496, unknown units dropped.

    Read per Observation, not by its id: a panel's components share the panel's id."""
    for coded in observations:
        observation = coded[0]
        measurement = next(measurements_in([coded], "vitamin-d-25oh"), None)
        if measurement is None:
            continue
        quantity = observation.get("valueQuantity") or {}
        unit = str(quantity.get("code") or quantity.get("unit") or "").lower()
        if "nmol" in unit:
            value = round(measurement.value / 2.496, 1)
        elif "ng" in unit or "ug/l" in unit or "µg/l" in unit:
            value = measurement.value
        else:
            continue
        yield Measurement(
            measurement.when, value, measurement.name, measurement.source,
            measurement.unverified_codes, measurement.abnormal, measurement.code,
        )
