"""The knowledge artifacts in fhir_profiles/ are valid R4 and consistent with each other.

Checks what start-up does not: the PlanDefinition covers every card topic in order, every
suggested order resolves to an ActivityDefinition whose codes come from the project's ValueSets
(so from the code reference they are generated from), UNVERIFIED codes stay flagged, condition
texts quote the shipped thresholds, and the BPI Questionnaire keeps the linkIds the service reads.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.knowledge.rules_page import format_value

PROFILES = Path(__file__).resolve().parent.parent / "fhir_profiles"
BASE = "http://aimss-cds.example.org/fhir/"
TOPIC_SYSTEM = BASE + "CodeSystem/aimss-card-topics"
VERIFICATION = BASE + "StructureDefinition/code-verification"
HOOKS = {"patient-view", "order-select"}

# The ActivityDefinition ids are a contract with the rules code (findings' Order.activities).
ACTIVITY_KINDS = {
    "dxa-scan": "ServiceRequest",
    "duloxetine-30mg": "MedicationRequest",
    "physical-therapy-referral": "ServiceRequest",
    "acupuncture-referral": "ServiceRequest",
    "exercise-program": "ServiceRequest",
    "hand-therapy-referral": "ServiceRequest",
    "tsh-test": "ServiceRequest",
    "vitamin-d-test": "ServiceRequest",
    "phq9-screen": "ServiceRequest",
    "bisphosphonate": "MedicationRequest",
    "calcium-supplement": "MedicationRequest",
    "vitamin-d-supplement": "MedicationRequest",
}

# Codings an ActivityDefinition may use although no ValueSet lists them. Every other coding must
# be a ValueSet member (ValueSets are generated from the shared code reference, which may not be
# beside CI). Empty today: each order code is also matched as "already in place". Add a code here
# only with a comment saying where it was verified.
ALLOWED_OUTSIDE_VALUESETS: set[tuple[str, str]] = set()

# The order codes the code reference marks UNVERIFIED (clinical-codes.tsv): they must carry the
# code-verification extension with status "unverified", and no other order code may.
UNVERIFIED_ORDER_CODES = {("http://snomed.info/sct", "386637004")}  # Acupuncture (procedure)

# Orders with no code in the reference: text only, never an invented code.
TEXT_ONLY_ORDERS = {"hand-therapy-referral"}

BPI_LINK_IDS = {
    "severity-worst",
    "severity-least",
    "severity-average",
    "severity-now",
    "interference-general-activity",
    "interference-mood",
    "interference-walking",
    "interference-work",
    "interference-relations",
    "interference-sleep",
    "interference-enjoyment",
}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _resources(resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        path.name: resource
        for path in sorted(PROFILES.glob("*.json"))
        if (resource := _load(path))["resourceType"] == resource_type
    }


def _plan() -> dict[str, Any]:
    return _load(PROFILES / "PlanDefinition-aimss-recommendations.json")


def _topics() -> list[str]:
    return [c["code"] for c in _load(PROFILES / "CodeSystem-aimss-card-topics.json")["concept"]]


def _walk(elements: list[dict[str, Any]], children: str = "action"):
    for element in elements:
        yield element
        yield from _walk(element.get(children, []), children)


def _unverified(element: dict[str, Any]) -> bool:
    for extension in element.get("extension", []):
        if extension.get("url") == VERIFICATION:
            parts = {p["url"]: p for p in extension.get("extension", [])}
            return parts.get("status", {}).get("valueCode") == "unverified"
    return False


def _valueset_members() -> dict[tuple[str, str], dict[str, Any]]:
    members = {}
    for resource in _resources("ValueSet").values():
        for include in resource.get("compose", {}).get("include", []):
            for concept in include.get("concept", []):
                members[(include["system"], concept["code"])] = concept
    return members


def _activity_codings(definition: dict[str, Any]) -> list[dict[str, Any]]:
    concept = definition.get("productCodeableConcept") or definition.get("code") or {}
    return concept.get("coding", [])


# --- every artifact ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.json")), ids=lambda p: p.name)
def test_artifact_is_valid_r4(path: Path) -> None:
    resource = _load(path)
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert path.name == f"{resource['resourceType']}-{resource['id']}.json"
    assert resource["url"] == f"{BASE}{resource['resourceType']}/{resource['id']}"


# --- PlanDefinition ---------------------------------------------------------------------------


# Topics of the cards that group recommendations: their wording is in card-text.toml, not an action.
CARD_TOPICS = ("aimss-plan", "bone-health")


def test_every_topic_has_one_action_in_code_system_order() -> None:
    recommendations = [topic for topic in _topics() if topic not in CARD_TOPICS]
    assert [action["id"] for action in _plan()["action"]] == recommendations


def test_action_code_is_its_topic() -> None:
    concepts = _load(PROFILES / "CodeSystem-aimss-card-topics.json")["concept"]
    displays = {c["code"]: c["display"] for c in concepts}
    for action in _plan()["action"]:
        (coding,) = [c for concept in action["code"] for c in concept["coding"]]
        topic = action["id"]
        assert coding == {"system": TOPIC_SYSTEM, "code": topic, "display": displays[topic]}


def test_actions_have_hooks_conditions_and_text() -> None:
    for action in _plan()["action"]:
        assert action.get("title") and action.get("description"), action["id"]
        hooks = {t["name"] for t in action["trigger"] if t["type"] == "named-event"}
        assert hooks and hooks <= HOOKS, action["id"]
        assert action["condition"], action["id"]
        for condition in action["condition"]:
            assert condition["kind"] == "applicability"
            assert condition["expression"]["language"] == "text/plain"
            assert condition["expression"]["description"].strip()


def test_every_action_cites_evidence_with_an_https_link() -> None:
    for action in _plan()["action"]:
        citations = [d for d in action.get("documentation", []) if d["type"] == "citation"]
        assert citations, f"{action['id']} cites nothing"
        for citation in citations:
            assert citation["label"] and citation["display"], action["id"]
            assert citation["url"].startswith("https://"), (action["id"], citation["url"])


def test_every_definition_canonical_resolves_to_an_activity_definition() -> None:
    for action in _walk(_plan()["action"]):
        if canonical := action.get("definitionCanonical"):
            assert canonical.startswith(BASE + "ActivityDefinition/"), canonical
            path = PROFILES / f"ActivityDefinition-{canonical.rsplit('/', 1)[-1]}.json"
            assert path.is_file(), f"{canonical}: no {path.name}"
            assert _load(path)["url"] == canonical


def test_every_activity_definition_is_suggested_by_some_action() -> None:
    actions = _walk(_plan()["action"])
    used = {a["definitionCanonical"] for a in actions if "definitionCanonical" in a}
    defined = {r["url"] for r in _resources("ActivityDefinition").values()}
    assert defined <= used, f"not suggested by the PlanDefinition: {sorted(defined - used)}"


_QUOTED = re.compile(r"`((?:[a-z-]+\.)?[a-z_]+)` \(([^)]*)\)")


def test_conditions_quote_the_shipped_thresholds() -> None:
    rules = tomllib.loads((PROFILES / "rules.toml").read_text(encoding="utf-8"))
    quoted = 0
    for action in _plan()["action"]:
        for condition in action["condition"]:
            for name, value in _QUOTED.findall(condition["expression"]["description"]):
                section, _, key = name.rpartition(".")
                section = section or action["id"]
                where = f"{action['id']}: no [{section}] {key} in rules.toml"
                assert key in rules.get(section, {}), where
                assert value == format_value(rules[section][key]), (action["id"], name, value)
                quoted += 1
    assert quoted >= 15


# --- ActivityDefinitions ----------------------------------------------------------------------


def test_activity_definitions_are_the_contracted_ones() -> None:
    definitions = {r["id"]: r for r in _resources("ActivityDefinition").values()}
    assert {i: d["kind"] for i, d in definitions.items()} == ACTIVITY_KINDS


@pytest.mark.parametrize("activity_id", sorted(ACTIVITY_KINDS))
def test_activity_definition_layout(activity_id: str) -> None:
    definition = _load(PROFILES / f"ActivityDefinition-{activity_id}.json")
    assert definition["version"] == "0.1.0"
    assert definition["status"] == "draft" and definition["experimental"] is False
    assert definition["publisher"] == "AIMSS CDS"
    assert definition["title"] and definition["description"]
    if definition["kind"] == "ServiceRequest":
        assert definition["intent"] == "order" and definition["priority"] == "routine"
        assert definition["code"].get("coding") or definition["code"].get("text")
    else:
        assert definition["productCodeableConcept"]["coding"]
        assert definition["dosage"] and all(d.get("text") for d in definition["dosage"])


def test_activity_codes_come_from_the_value_sets() -> None:
    members = _valueset_members()
    for definition in _resources("ActivityDefinition").values():
        for coding in _activity_codings(definition):
            key = (coding["system"], coding["code"])
            if key in ALLOWED_OUTSIDE_VALUESETS:
                continue
            assert key in members, f"{definition['id']}: {key} is in no ValueSet"
            assert coding["display"] == members[key]["display"], definition["id"]


def test_unverified_order_codes_are_exactly_the_flagged_ones() -> None:
    members = _valueset_members()
    flagged = set()
    for definition in _resources("ActivityDefinition").values():
        for coding in _activity_codings(definition):
            key = (coding["system"], coding["code"])
            if _unverified(coding):
                flagged.add(key)
                assert "UNVERIFIED" in definition["description"], definition["id"]
            if key in members:
                assert _unverified(coding) == _unverified(members[key]), (definition["id"], key)
    assert flagged == UNVERIFIED_ORDER_CODES


def test_orders_without_a_reference_code_are_text_only() -> None:
    for activity_id in TEXT_ONLY_ORDERS:
        code = _load(PROFILES / f"ActivityDefinition-{activity_id}.json")["code"]
        assert code == {"text": code["text"]} and code["text"]


# --- BPI Questionnaire ------------------------------------------------------------------------


def test_bpi_questionnaire_has_the_items_the_service_reads() -> None:
    questionnaire = _load(PROFILES / "Questionnaire-bpi-short-form.json")
    assert questionnaire["url"] == BASE + "Questionnaire/bpi-short-form"
    leaves = [i for i in _walk(questionnaire["item"], "item") if i["type"] != "group"]
    assert {i["linkId"] for i in leaves} == BPI_LINK_IDS and len(leaves) == 11
    for item in _walk(questionnaire["item"], "item"):
        assert "code" not in item, f"{item['linkId']}: BPI item codes are not verified"
    for item in leaves:
        assert item["type"] == "integer"
        bounds = {e["url"].rsplit("/", 1)[-1]: e["valueInteger"] for e in item["extension"]}
        assert bounds == {"minValue": 0, "maxValue": 10}, item["linkId"]
