"""The Brief Pain Inventory from QuestionnaireResponses: interference computed, pain read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cds_service.clinical.facts.model import Measurement
from cds_service.clinical.facts.observations import NUMBER, numeric_value
from cds_service.fhir.resources import Resource, first_date, reference_key

BPI_QUESTIONNAIRE = "http://aimss-cds.example.org/fhir/Questionnaire/bpi-short-form"
BPI_INTERFERENCE_ITEMS = (
    "interference-general-activity", "interference-mood", "interference-walking",
    "interference-work", "interference-relations", "interference-sleep",
    "interference-enjoyment",
)
BPI_PAIN_ITEMS = ("severity-average", "severity-worst")


def bpi_from_questionnaires(
    responses: Iterable[Resource], min_items: int
) -> tuple[list[Measurement], list[Measurement]]:
    """BPI interference (mean of the 7 items, if enough answered) and pain, per BPI response."""
    interference: list[Measurement] = []
    pain: list[Measurement] = []
    for response in responses:
        if response.get("status") not in ("completed", "amended"):
            continue
        answers = dict(_answers(response.get("item") or []))
        has_bpi_items = any(link in answers for link in BPI_INTERFERENCE_ITEMS)
        if str(response.get("questionnaire", "")).split("|")[0] != BPI_QUESTIONNAIRE and not has_bpi_items:
            continue
        when = first_date(response, "authored")
        if when is None:
            continue
        source = reference_key(response) or "QuestionnaireResponse"
        scored = [answers[link] for link in BPI_INTERFERENCE_ITEMS if link in answers]
        if len(scored) >= min_items:
            mean = round(sum(scored) / len(scored), 2)
            name = f"BPI interference (mean of {len(scored)} of 7 items)"
            interference.append(Measurement(when, mean, name, source))
        for link in BPI_PAIN_ITEMS:
            if link in answers:
                pain.append(Measurement(when, answers[link], f"BPI {link.split('-')[1]} pain", source))
                break
    return interference, pain


def _answers(items: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, float]]:
    for item in items:
        for answer in item.get("answer") or []:
            value = numeric_value(answer)
            coding = answer.get("valueCoding") or {}
            if value is None and isinstance(coding.get("code"), str) and NUMBER.match(coding["code"]):
                value = float(coding["code"])
            if value is not None and 0 <= value <= 10:
                yield str(item.get("linkId")), value
                break
        yield from _answers(item.get("item") or [])
