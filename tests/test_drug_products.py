"""Issue 11: a branded product, another strength and a pack trigger the same rule as the
ingredient, through the whole service (HTTP in, cards out).

The products are the real rxcuis of ``tests/test_terminology.EXAMPLES``; each is compared with
the plain ingredient code of its own first ingredient (read from ``terminology/``), on the same
chart. Recommendations are read layout-independently: a card's topic plus the recommendations
it lists under the ``org.example.aimss-cds.recommendations`` extension.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.clinical.dates import months_before
from sandbox.synthetic import (
    ANASTROZOLE_1MG,
    DULOXETINE_30MG,
    PAROXETINE_20MG,
    TAMOXIFEN_10MG,
    TRAMADOL_50MG,
    medication_statement,
    observation,
)
from tests.conftest import TODAY
from tests.helpers import order_select, patient_view
from tests.test_terminology import EXAMPLES

TERMINOLOGY = Path(__file__).resolve().parent.parent / "terminology"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
RECOMMENDATIONS = "org.example.aimss-cds.recommendations"
PATIENT = "pat-1"
Chart = tuple[dict[str, Any], ...]


@cache
def _rows() -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    for name in ("rxnorm-subset.tsv", "rxnorm-added.tsv"):  # added rows replace subset rows
        with (TERMINOLOGY / name).open(encoding="utf-8", newline="") as table:
            rows |= {row["rxcui"]: row for row in csv.DictReader(table, delimiter="\t")}
    return rows


def ingredient_of(rxcui: str, knowledge: Any, group: str) -> tuple[str, str]:
    """The product's first ingredient (IN) that is itself in ``group``, as RxNorm names it."""
    row = _rows()[rxcui]
    members = {code for _, code in knowledge.codes(group)}
    pairs = zip(row["ingredient_rxcuis"].split("|"), row["ingredient_names"].split("|"), strict=True)
    return next((code, name) for code, name in pairs if code in members)


def display(rxcui: str) -> str:
    return _rows()[rxcui]["name"]


_ids = iter(range(100_000))


def on(code: tuple[str, str], months: int = 6) -> dict[str, Any]:
    return medication_statement(PATIENT, f"m{next(_ids)}", code, months_before(TODAY, months))


def pain(value: float) -> dict[str, Any]:
    return observation(PATIENT, f"o{next(_ids)}", ("72514-3", "Pain severity 0-10"),
                       TODAY - timedelta(days=10), value, "{score}")


def dxa(t_score: float) -> dict[str, Any]:
    return observation(PATIENT, f"o{next(_ids)}", ("38263-0", "DXA Femur [T-score]"),
                       months_before(TODAY, 3), t_score, "{T-score}")


def _prefetch(client: TestClient, service: str, chart: Chart) -> dict[str, Any]:
    """Every key of the service present: the whole chart under one, the others empty."""
    services = {s["id"]: s for s in client.get("/cds-services").json()["services"]}
    keys = list(services[service]["prefetch"])
    bundle = {"resourceType": "Bundle", "type": "searchset",
              "entry": [{"resource": resource} for resource in chart]}
    return {key: (bundle if i == 0 else None) for i, key in enumerate(keys)}


def recommendations(body: dict[str, Any]) -> set[str]:
    found = set()
    for card in body["cards"]:
        found.add(card["source"]["topic"]["code"])
        for extension in card.get("extension", {}).get(RECOMMENDATIONS, []):
            found.add(extension["code"])
    return found


def drafted(client: TestClient, code: tuple[str, str], chart: Chart) -> set[str]:
    draft = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
             "intent": "order", "subject": {"reference": f"Patient/{PATIENT}"},
             "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code[0],
                                                       "display": code[1]}]}}
    body = order_select(draft, PATIENT, prefetch=_prefetch(client, "aimss-order-select", chart))
    response = client.post("/cds-services/aimss-order-select", json=body)
    assert response.status_code == 200, response.text
    return recommendations(response.json())


def suggested_drugs(client: TestClient, chart: Chart) -> set[str]:
    """RxNorm codes of every MedicationRequest a patient-view suggestion would create."""
    body = patient_view(PATIENT, prefetch=_prefetch(client, "aimss-patient-view", chart))
    response = client.post("/cds-services/aimss-patient-view", json=body)
    assert response.status_code == 200, response.text
    return {
        coding["code"]
        for card in response.json()["cards"]
        for suggestion in card.get("suggestions", [])
        for action in suggestion.get("actions", [])
        if action.get("resource", {}).get("resourceType") == "MedicationRequest"
        for coding in action["resource"]["medicationCodeableConcept"]["coding"]
    }


# Drafted drug group -> (the chart it is drafted against, the rule that must fire).
ORDER_TIME: dict[str, tuple[Callable[[], Chart], str]] = {
    "anastrozole": (lambda: (), "ai-start-bone-health"),
    "letrozole": (lambda: (), "ai-start-bone-health"),
    "exemestane": (lambda: (), "ai-start-bone-health"),
    "tamoxifen": (lambda: (on(PAROXETINE_20MG),), "tamoxifen-cyp2d6"),
    "serms": (lambda: (on(ANASTROZOLE_1MG),), "serm-with-ai"),
    "duloxetine": (lambda: (on(TRAMADOL_50MG),), "serotonergic-interaction"),
    "maois": (lambda: (on(DULOXETINE_30MG),), "serotonergic-interaction"),
    "linezolid": (lambda: (on(DULOXETINE_30MG),), "serotonergic-interaction"),
    "serotonergic-drugs": (lambda: (on(DULOXETINE_30MG),), "serotonergic-interaction"),
    "cyp2d6-inhibitors-strong": (lambda: (on(TAMOXIFEN_10MG),), "tamoxifen-cyp2d6"),
    "cyp2d6-inhibitors-moderate": (lambda: (on(TAMOXIFEN_10MG),), "tamoxifen-cyp2d6"),
    "nsaids": (lambda: (on(ANASTROZOLE_1MG), pain(4), dxa(-1.0)), "analgesic-expectations"),
    "acetaminophen": (lambda: (on(ANASTROZOLE_1MG), pain(4), dxa(-1.0)), "analgesic-expectations"),
}


@pytest.mark.parametrize(
    ("group", "product"),
    [(group, code) for group in ORDER_TIME for code in EXAMPLES[group] if code],
)
def test_a_drafted_product_triggers_the_rule_of_its_ingredient(
    client: TestClient, knowledge: Any, group: str, product: str
) -> None:
    make_chart, rule = ORDER_TIME[group]
    chart = make_chart()
    by_ingredient = drafted(client, ingredient_of(product, knowledge, group), chart)
    by_product = drafted(client, (product, display(product)), chart)
    assert rule in by_ingredient, f"{group}: the ingredient itself must fire {rule}"
    assert by_product == by_ingredient, f"{group} product {product} ({display(product)})"


# A drug already on the chart: the patient-view suggestion it makes unnecessary.
ALREADY_ON = {
    "bisphosphonates": "bone-modifying-agents",
    "denosumab": "bone-modifying-agents",
    "calcium-vitamin-d": "calcium-vitamin-d",
}


@pytest.mark.parametrize(
    ("group", "product"),
    [(group, code) for group in ALREADY_ON for code in EXAMPLES[group] if code],
)
def test_a_product_on_the_chart_counts_like_its_ingredient(
    client: TestClient, knowledge: Any, group: str, product: str
) -> None:
    osteoporotic = (on(ANASTROZOLE_1MG, 12), dxa(-2.8))
    suggested_set = ALREADY_ON[group]
    members = {code for _, code in knowledge.codes(suggested_set)}

    def suggests_it(chart: Chart) -> bool:
        return bool(suggested_drugs(client, chart) & members)

    assert suggests_it(osteoporotic), f"no {suggested_set} suggested without the drug: test is void"
    assert not suggests_it((*osteoporotic, on(ingredient_of(product, knowledge, group))))
    assert not suggests_it((*osteoporotic, on((product, display(product)))))
