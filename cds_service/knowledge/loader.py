"""The clinical knowledge, loaded once at start-up from ``fhir_profiles/`` and the rules files.

Every artifact is validated as FHIR R4 before use; anything broken stops start-up with a
message that names the file (``KnowledgeError``). Code lookups are precomputed into dicts so
the hot path of a hook call is a set lookup per coding.
"""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from cds_service.knowledge.rules_config import RulesConfig, merge, valueset_references
from cds_service.knowledge.wording import Wording, WordingError, load_wording

VERIFICATION_EXTENSION = "http://aimss-cds.example.org/fhir/StructureDefinition/code-verification"
TOPIC_SYSTEM = "http://aimss-cds.example.org/fhir/CodeSystem/aimss-card-topics"
OVERRIDE_SYSTEM = "http://aimss-cds.example.org/fhir/CodeSystem/aimss-override-reasons"
WORDING_FILE = "card-text.toml"
DATA_INCOMPLETE = "data-incomplete"
"""The one patient-view topic on no grouped card: it is said inside them, or stands alone."""

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

# Spellings of the same code system seen in real-world data, mapped to the canonical URI.
SYSTEM_ALIASES = {
    "urn:oid:2.16.840.1.113883.6.88": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "http://www.nlm.nih.gov/research/umls/rxnorm/": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "urn:oid:2.16.840.1.113883.6.1": "http://loinc.org",
    "urn:oid:2.16.840.1.113883.6.96": "http://snomed.info/sct",
    "urn:oid:2.16.840.1.113883.6.90": "http://hl7.org/fhir/sid/icd-10-cm",
    "http://hl7.org/fhir/sid/icd-10": "http://hl7.org/fhir/sid/icd-10-cm",
    "urn:oid:2.16.840.1.113883.6.73": "http://www.whocc.no/atc",
}


class KnowledgeError(RuntimeError):
    """A knowledge artifact is missing or broken; the service must not start."""


@dataclass(frozen=True)
class CodeMatch:
    """One coding of the patient's data found in a value set, and whether the code is verified."""

    valueset: str
    system: str
    code: str
    display: str
    verified: bool


@dataclass(frozen=True)
class Citation:
    label: str
    display: str
    url: str


@dataclass(frozen=True)
class Recommendation:
    """A PlanDefinition action: what a card of this topic says about itself and cites."""

    topic: str
    topic_display: str
    title: str
    condition: str
    citations: tuple[Citation, ...]
    activities: tuple[str, ...]


@dataclass(frozen=True)
class RulesSource:
    """The rules files as read: shipped values, merged values, and the shipped keys' comments."""

    shipped: Mapping[str, Any]
    merged: Mapping[str, Any]
    meanings: Mapping[tuple[str, str], str]
    site_file: Path | None


@dataclass(frozen=True)
class Knowledge:
    """Everything loaded from the knowledge files; the artifacts are kept for the rules page."""

    valuesets: Mapping[str, frozenset[tuple[str, str]]]
    recommendations: Mapping[str, Recommendation]
    activities: Mapping[str, dict[str, Any]]
    override_reasons: tuple[tuple[str, str], ...]
    rules: RulesConfig
    topics: Mapping[str, str]
    """Every code of the topics CodeSystem (recommendations and grouped cards), with its display."""
    wording: Wording
    """What the cards say (``card-text.toml``)."""
    artifacts: Mapping[str, Mapping[str, dict[str, Any]]] = field(repr=False)
    """Every artifact of ``fhir_profiles/``, by resourceType then canonical URL."""
    rules_source: RulesSource = field(repr=False)
    _index: Mapping[tuple[str, str], tuple[CodeMatch, ...]] = field(repr=False)

    def matches(self, codings: Iterable[Mapping[str, Any]]) -> tuple[CodeMatch, ...]:
        """Every value-set membership of the given FHIR codings."""
        found: list[CodeMatch] = []
        for coding in codings:
            system, code = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(code, str):
                system = SYSTEM_ALIASES.get(system, system)
                code = code.strip()
                if matched := self._index.get((system, code)):  # the code itself, most often
                    found.extend(matched)
                    continue
                for candidate in _candidates(system, code):
                    if matched := self._index.get((system, candidate)):
                        found.extend(matched)
                        break
        return tuple(found)

    def codes(self, valueset: str) -> frozenset[tuple[str, str]]:
        return self.valuesets[valueset]


def _candidates(system: str, code: str) -> Iterable[str]:
    """The code, then for ICD-10-CM its parents: a set listing M65.31 also holds M65.311."""
    yield code
    if system == ICD10CM:
        while len(code) > 3:
            code = code[:-1].rstrip(".")
            yield code


def canonical_system(system: str) -> str:
    return SYSTEM_ALIASES.get(system, system)


def load_knowledge(profiles_dir: Path, site_rules: Path | None = None) -> Knowledge:
    artifacts = _read_artifacts(profiles_dir)
    valuesets = _expand_valuesets(artifacts.get("ValueSet", {}))
    topics = _concepts(artifacts.get("CodeSystem", {}), TOPIC_SYSTEM, profiles_dir)
    override_reasons = _concepts(artifacts.get("CodeSystem", {}), OVERRIDE_SYSTEM, profiles_dir)
    recommendations = _recommendations(artifacts.get("PlanDefinition", {}), topics, profiles_dir)
    activities = {
        resource["id"]: resource for resource, _ in artifacts.get("ActivityDefinition", {}).values()
    }
    for recommendation in recommendations.values():
        for canonical in recommendation.activities:
            if canonical.rsplit("/", 1)[-1] not in activities:
                raise KnowledgeError(
                    f"PlanDefinition action {recommendation.topic!r} uses {canonical}, "
                    f"which is not an ActivityDefinition in {profiles_dir}"
                )
    index: dict[tuple[str, str], list[CodeMatch]] = defaultdict(list)
    for valueset_id, members in valuesets.items():
        for member in members:
            index[(member.system, member.code)].append(
                CodeMatch(valueset_id, member.system, member.code, member.display, member.verified)
            )
    wording_file = profiles_dir / WORDING_FILE
    try:
        wording = load_wording(
            wording_file,
            {topic: [c.label for c in r.citations] for topic, r in recommendations.items()},
            topics,
            activities,
        )
    except WordingError as error:
        raise KnowledgeError(f"{wording_file}: {error}") from error
    ungrouped = sorted(_patient_view_topics(artifacts.get("PlanDefinition", {})) - {DATA_INCOMPLETE} - {
        topic for card in wording.cards.values() for topic in card.recommendations
    })
    if ungrouped:  # each would be a card of its own beside the plans: more than three cards
        raise KnowledgeError(f"{wording_file}: patient-view recommendations on no [cards]: {', '.join(ungrouped)}")
    rules_source = _read_rules(profiles_dir / "rules.toml", site_rules)
    rules = _validate_rules(rules_source, profiles_dir / "rules.toml")
    unknown_reasons = set(rules.snooze.reasons) - set(override_reasons)
    if unknown_reasons:
        raise KnowledgeError(
            f"rules [snooze] reasons {sorted(unknown_reasons)} are not codes of {OVERRIDE_SYSTEM}"
        )
    unknown_sets = valueset_references(rules) - set(valuesets)
    if unknown_sets:
        raise KnowledgeError(f"rules name ValueSets that are not in {profiles_dir}: {sorted(unknown_sets)}")
    if rules.bone_protection.agent_activity not in activities:
        raise KnowledgeError(f"rules [bone-protection] agent_activity: no ActivityDefinition "
                             f"{rules.bone_protection.agent_activity!r}")
    return Knowledge(
        valuesets={vs: frozenset((m.system, m.code) for m in ms) for vs, ms in valuesets.items()},
        recommendations=recommendations,
        activities=activities,
        override_reasons=tuple(override_reasons.items()),
        rules=rules,
        topics=topics,
        wording=wording,
        artifacts={
            kind: {url: resource for url, (resource, _) in by_url.items()}
            for kind, by_url in artifacts.items()
        },
        rules_source=rules_source,
        _index={key: tuple(value) for key, value in index.items()},
    )


def _patient_view_topics(plans: Mapping[str, tuple[dict[str, Any], Path]]) -> set[str]:
    """The PlanDefinition actions the patient-view hook triggers."""
    return {
        action["id"]
        for resource, _ in plans.values()
        for action in resource.get("action", [])
        if any(t.get("name") == "patient-view" for t in action.get("trigger", []))
    }


def _read_artifacts(profiles_dir: Path) -> dict[str, dict[str, tuple[dict[str, Any], Path]]]:
    """Every ``*.json`` in the folder, validated against the R4 (R4B) model of its type."""
    if not profiles_dir.is_dir():
        raise KnowledgeError(f"knowledge folder {profiles_dir} does not exist")
    artifacts: dict[str, dict[str, tuple[dict[str, Any], Path]]] = defaultdict(dict)
    for path in sorted(profiles_dir.glob("*.json")):
        try:
            resource = json.loads(path.read_text(encoding="utf-8"))
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as error:
            raise KnowledgeError(f"{path}: not a valid FHIR R4 resource: {error}") from error
        artifacts[resource["resourceType"]][resource["url"]] = (resource, path)
    return artifacts


@dataclass(frozen=True)
class _Member:
    system: str
    code: str
    display: str
    verified: bool


def _expand_valuesets(
    by_url: Mapping[str, tuple[dict[str, Any], Path]],
) -> dict[str, frozenset[_Member]]:
    """Enumerated concepts plus included value sets (grouping sets), by ValueSet id."""
    expanded: dict[str, frozenset[_Member]] = {}

    def expand(url: str, trail: tuple[str, ...]) -> frozenset[_Member]:
        if url not in by_url:
            raise KnowledgeError(f"{by_url[trail[-1]][1]}: includes unknown value set {url}")
        resource, path = by_url[url]
        if url in trail:
            raise KnowledgeError(f"{path}: value set includes itself through {' -> '.join(trail)}")
        members: set[_Member] = set()
        for include in resource.get("compose", {}).get("include", []):
            for nested in include.get("valueSet", []):
                members |= expand(nested, (*trail, url))
            if "concept" in include:
                system = canonical_system(include["system"])
                members |= {
                    _Member(system, c["code"], c.get("display", c["code"]), is_verified(c))
                    for c in include["concept"]
                }
            elif "system" in include:
                raise KnowledgeError(f"{path}: only enumerated concepts are supported")
        return frozenset(members)

    for url, (resource, _) in by_url.items():
        expanded[resource["id"]] = expand(url, ())
    return expanded


def is_verified(concept: Mapping[str, Any]) -> bool:
    """False when the code-verification extension marks a concept or coding UNVERIFIED."""
    for extension in concept.get("extension", []):
        if extension.get("url") == VERIFICATION_EXTENSION:
            for part in extension.get("extension", []):
                if part.get("url") == "status":
                    return bool(part.get("valueCode") != "unverified")
    return True


def _concepts(
    code_systems: Mapping[str, tuple[dict[str, Any], Path]], url: str, where: Path
) -> dict[str, str]:
    if url not in code_systems:
        raise KnowledgeError(f"{where}: the CodeSystem {url} is missing")
    resource, _ = code_systems[url]
    return {concept["code"]: concept["display"] for concept in resource["concept"]}


def _recommendations(
    plans: Mapping[str, tuple[dict[str, Any], Path]], topics: Mapping[str, str], where: Path
) -> dict[str, Recommendation]:
    if not plans:
        raise KnowledgeError(f"{where}: no PlanDefinition of the recommendations")
    recommendations: dict[str, Recommendation] = {}
    for resource, path in plans.values():
        for action in resource.get("action", []):
            topic = action["id"]
            if topic not in topics:
                raise KnowledgeError(f"{path}: action {topic!r} is not a code of {TOPIC_SYSTEM}")
            citations = tuple(
                Citation(doc.get("label", ""), doc.get("display", ""), doc.get("url", ""))
                for doc in action.get("documentation", [])
                if doc.get("type") == "citation"
            )
            if not citations:
                raise KnowledgeError(f"{path}: action {topic!r} cites no evidence")
            conditions = [
                c["expression"].get("description", "") for c in action.get("condition", [])
            ]
            activities = [action["definitionCanonical"]] if "definitionCanonical" in action else []
            activities += [
                sub["definitionCanonical"]
                for sub in action.get("action", [])
                if "definitionCanonical" in sub
            ]
            recommendations[topic] = Recommendation(
                topic=topic,
                topic_display=topics[topic],
                title=action.get("title", topics[topic]),
                condition=" ".join(conditions),
                citations=citations,
                activities=tuple(activities),
            )
    return recommendations


def _read_rules(shipped: Path, site: Path | None) -> RulesSource:
    text = _read_text(shipped)
    data = _parse_toml(text, shipped)
    merged = merge(data, _parse_toml(_read_text(site), site)) if site is not None else data
    return RulesSource(data, merged, _toml_comments(text), site)


def _validate_rules(source: RulesSource, shipped: Path) -> RulesConfig:
    try:
        return RulesConfig.model_validate(source.merged)
    except ValidationError as error:
        where = f"{shipped} with {source.site_file}" if source.site_file else str(shipped)
        raise KnowledgeError(f"{where}: invalid rules: {error}") from error


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise KnowledgeError(f"{path}: cannot read rules: {error}") from error


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise KnowledgeError(f"{path}: cannot read rules: {error}") from error


def _toml_comments(text: str) -> dict[tuple[str, str], str]:
    """The comment lines written just above each key of the shipped rules file (its meaning)."""
    meanings: dict[tuple[str, str], str] = {}
    comments: list[str] = []
    section, previous = "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section, comments, previous = line.strip("[]").strip(), [], ""
        elif line.startswith("#"):
            comments.append(line.lstrip("#").strip())
            previous = ""
        elif "=" in line and section:
            key = line.split("=", 1)[0].strip().strip('"')
            meanings[(section, key)] = " ".join(comments) or (
                f"See `{previous}` above." if previous else ""
            )
            comments, previous = [], key
        else:
            comments, previous = [], ""
    return meanings
