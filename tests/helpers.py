"""Request builders and response checks shared by the API tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

ALLOWED_TOKENS = re.compile(
    r"^(context\.(patientId|userId|encounterId)|userPractitionerId|userPractitionerRoleId"
    r"|userPatientId|userRelatedPersonId)$"
)


def patient_view(patient_id: str = "pat-1", **fields: Any) -> dict[str, Any]:
    """A patient-view body shaped like the public sandbox's: no encounterId, no token."""
    return {
        "hookInstance": "47ddae0c-1b53-4f7b-a2b4-9a4e3f0c4a11",
        "hook": "patient-view",
        "context": {"patientId": patient_id, "userId": "Practitioner/COREPRACTITIONER1"},
        **fields,
    }


def order_select(draft: dict[str, Any], patient_id: str = "pat-1", **fields: Any) -> dict[str, Any]:
    """An order-select body as the sandbox sends it: fixed selection id, Bundle without type."""
    return {
        "hookInstance": "bdc60b39-5a7e-4c3c-9f57-0b7f1e2d3c44",
        "hook": "order-select",
        "context": {
            "patientId": patient_id,
            "userId": "Practitioner/COREPRACTITIONER1",
            "selections": ["MedicationRequest/request-123"],
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]},
        },
        **fields,
    }


def draft_without_drug(patient_id: str = "pat-1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "request-123",
        "status": "draft",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": "2026-11-21",
    }


def empty_members(value: Any, path: str = "$") -> list[str]:
    """Paths of every null, "", [] or {} in a JSON document (forbidden by CDS Hooks)."""
    if value is None or value == "" or value == [] or value == {}:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_members(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_members(v, f"{path}[{i}]")]
    return []


def assert_valid_cards(body: dict[str, Any]) -> None:
    """Card shape of DESIGN §2 and the CDS Hooks response rules, and valid R4 suggestions."""
    assert set(body) == {"cards"}
    assert empty_members(body["cards"], "$.cards") == [] or body["cards"] == []
    for card in body["cards"]:
        assert card["uuid"] and len(card["summary"]) < 140
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"] and card["source"]["url"].startswith("https://")
        assert card["source"]["topic"]["code"]
        assert card["detail"].strip()
        assert all(r["display"] for r in card["overrideReasons"])
        for suggestion in card.get("suggestions", []):
            assert card["selectionBehavior"] in {"at-most-one", "any"}
            assert suggestion["uuid"] and suggestion["label"]
            for action in suggestion["actions"]:
                if action["type"] == "delete":
                    assert action["resourceId"] and "resource" not in action
                else:
                    resource = action["resource"]
                    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


RECOMMENDATIONS = "org.example.aimss-cds.recommendations"
SUGGESTION_RECOMMENDATION = "org.example.aimss-cds.recommendation"
PER_RECOMMENDATION = '[presentation]\ncards = "per-recommendation"\n'
"""A site rules file asking for one card per recommendation (the former presentation)."""


def topics(body: dict[str, Any]) -> set[str]:
    """The recommendations the cards hold: a grouped card's list, else the card's own topic."""
    found: set[str] = set()
    for card in body["cards"]:
        held = (card.get("extension") or {}).get(RECOMMENDATIONS)
        found |= {c["code"] for c in held} if held else {card["source"]["topic"]["code"]}
    return found


def card_topics(body: dict[str, Any]) -> list[str]:
    """The cards' own topics, in the order sent."""
    return [card["source"]["topic"]["code"] for card in body["cards"]]


def card_holding(cards: list[dict[str, Any]], recommendation: str) -> dict[str, Any]:
    """The one card that holds a recommendation (grouped or not)."""
    (card,) = [c for c in cards if recommendation in topics({"cards": [c]})]
    return card


def suggestions_for(card: dict[str, Any], recommendation: str) -> list[dict[str, Any]]:
    """A card's suggestions that carry out this recommendation."""
    return [
        s for s in card.get("suggestions", [])
        if (s.get("extension") or {}).get(SUGGESTION_RECOMMENDATION, {}).get("code") == recommendation
    ]


def per_recommendation(tmp_path: Path) -> Path:
    path = tmp_path / "per-recommendation.toml"
    path.write_text(PER_RECOMMENDATION, encoding="utf-8")
    return path
