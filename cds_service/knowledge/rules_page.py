"""The human-readable rules page: every recommendation, threshold, suggestion and citation.

Rendered as Markdown from the loaded ``Knowledge`` (the artifacts of ``fhir_profiles/``: CodeSystem
of card topics, PlanDefinition, ActivityDefinitions, ValueSets, BPI Questionnaire; and the merged
rules files), so the page shows what the service loads and a clinician can review the rules
without reading Python (DESIGN §5). The loader is the only reader of those files. The output is
deterministic: the shipped page ``docs/rules.md`` is checked against a fresh render by the tests.

    python -m cds_service.knowledge.rules_page > docs/rules.md
    python -m cds_service.knowledge.rules_page --rules-file site-rules.toml   # a site's merged values
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds_service.knowledge.loader import (
    TOPIC_SYSTEM,
    VERIFICATION_EXTENSION,
    Knowledge,
    KnowledgeError,
    is_verified,
    load_knowledge,
)
from cds_service.knowledge.wording import CardText
from cds_service.settings import default_profiles_dir

Resource = dict[str, Any]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
RXNORM_CONCEPT_EXTENSION = "http://aimss-cds.example.org/fhir/StructureDefinition/rxnorm-concept"

SYSTEM_NAMES = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://www.ama-assn.org/go/cpt": "CPT",
    "http://www.whocc.no/atc": "ATC",
}
GENERAL_SECTIONS = {
    "facts": ("General data rules", "used by several topics."),
    "presentation": (
        "Presentation: plan cards or one card per recommendation",
        "patient-view only; grouped cards (`aimss-plan`, `bone-health`, `red-flags`) list the "
        "recommendations they hold, and their wording is in `card-text.toml`.",
    ),
    "duloxetine-safety": (
        "Safety check before any card proposes duloxetine",
        "used by `duloxetine`, `multimodal-management` and `adherence`. A contraindication "
        "(an MAOI or linezolid on the chart or stopped within the washout) removes duloxetine from "
        "every suggestion and the card says why; each caution the chart shows is named on the card.",
    ),
    "other-indications": (
        "Aromatase inhibitors given for another indication",
        "used by every patient-view topic: such a record (letrozole for ovulation induction) is "
        "not AI therapy for breast cancer and gets no AIMSS or bone cards. A missing breast-cancer "
        "diagnosis alone never stops the cards.",
    ),
    "snooze": (
        "Alert fatigue: quieting a card after an override",
        "an override with one of these reasons (system "
        "`http://aimss-cds.example.org/fhir/CodeSystem/aimss-override-reasons`) quiets that card "
        "(its topic: a plan card, or one recommendation) for that patient, on both hooks and "
        "every worker. **Critical cards are never "
        "quieted** (the safety warnings of order-select: a SERM or estrogen with an AI, a "
        "duloxetine-MAOI interaction), nor is `data-incomplete`, which says what could not be "
        "read on this call.",
    ),
}
BPI_QUESTIONNAIRE = "http://aimss-cds.example.org/fhir/Questionnaire/bpi-short-form"

HOW_TO_READ = """\
## How to read this page

This page is generated from the knowledge artifacts the service loads at start-up
(`fhir_profiles/`): the CodeSystem of card topics, the PlanDefinition of the recommendations,
the ActivityDefinitions of the orders it suggests, the ValueSets of every code it reads, and the
thresholds in `rules.toml`. It says exactly what the service does; to change a rule, change those
files (or a site's rules file) and regenerate the page.

- Each numbered section is one **recommendation**: one card topic (`source.topic.code` on the
  card). A response carries at most one card per topic.
- **Hooks**: when the EHR asks: `patient-view` (a chart is opened) or `order-select` (a clinician
  is drafting an order, which the service checks against the chart).
- **When it fires**: the trigger in words. Names in `code` style with a value in brackets are
  thresholds from `rules.toml`: section `[topic]` unless written `section.key`. Value-set names
  refer to the ValueSets listed at the end.
- **Cautions**: what is checked before a suggestion is made, what stops it, and what the card
  names when the chart shows it.
- **Thresholds**: the values in force, from the shipped `rules.toml` merged with a site's file
  (environment variable `AIMSS_RULES_FILE`); a value a site changed shows the shipped default
  beside it, and every other value is the shipped default. The meaning says where it comes from. *(design choice)* in the meaning marks values that
  are not from a source and need local clinical sign-off.
- **Suggestions**: the orders a card offers, each an ActivityDefinition the EHR can create as a
  draft order for the clinician to sign. "Remove" suggestions delete the drafted order.
- **Evidence**: the citations sent with the card. UNVERIFIED marks bibliographic data or
  findings the project's evidence review could not confirm.
- Missing data is never read as normal: a recommendation whose data could not be read does not
  fire, and the `data-incomplete` card says what was missing.
- Codes marked UNVERIFIED are matched, and flagged here, not on cards (cards carry no
  verification notes); check them in RxNav, the LOINC search or a SNOMED CT browser before
  production use (list at the end).
"""


def render_rules_page(profiles_dir: Path, rules_file: Path | None = None) -> str:
    """The rules page as Markdown. Fails like start-up does if the knowledge does not load."""
    return render(load_knowledge(profiles_dir, rules_file))


def render(knowledge: Knowledge) -> str:
    """The rules page of loaded knowledge."""
    resources = knowledge.artifacts
    shipped = knowledge.rules_source.shipped
    rules = knowledge.rules_source.merged
    meanings = knowledge.rules_source.meanings
    rules_file = knowledge.rules_source.site_file

    topics = _code_system(resources, TOPIC_SYSTEM)["concept"]
    plans = sorted(resources.get("PlanDefinition", {}).values(), key=lambda r: r["url"])
    actions = {action["id"]: action for plan in plans for action in plan.get("action", [])}
    activities = {r["url"]: r for r in resources.get("ActivityDefinition", {}).values()}

    out: list[str] = ["# AIMSS CDS: rules for clinical review", ""]
    for plan in plans:
        out += [
            (
                f"Generated from `{plan['url']}` (version {plan.get('version', '?')}, status "
                f"{plan.get('status', '?')}) and the files beside it. Do not edit by hand: run "
                "`python -m cds_service.knowledge.rules_page > docs/rules.md`."
            ),
            "",
        ]
    if rules_file:
        out += [
            f"Thresholds: the shipped `rules.toml` merged with the site file `{rules_file.name}`.",
            "",
        ]
    out += [HOW_TO_READ]

    out += ["## Recommendations", "", "| # | Topic | Hooks | Card |", "|---|---|---|---|"]
    for number, concept in enumerate(topics, 1):
        action = actions.get(concept["code"], {})
        hooks = ["patient-view"] if concept["code"] in knowledge.wording.cards else _hooks(action)
        out.append(
            f"| {number} | [`{concept['code']}`](#{_anchor(number, concept)}) | "
            f"{_cell(', '.join(hooks))} | "
            f"{_cell(action.get('title', concept['display']))} |"
        )
    out.append("")

    known_sections = {concept["code"] for concept in topics}
    general = [name for name in sorted(rules) if name not in known_sections]
    for name in general:
        heading, scope = GENERAL_SECTIONS.get(
            name, (f"Other rules: [{name}]", "used by several topics.")
        )
        out += [f"## {heading}", "", f"From `rules.toml` section `[{name}]`; {scope}", ""]
        out += _thresholds(name, rules.get(name, {}), shipped.get(name, {}), meanings)

    for number, concept in enumerate(topics, 1):
        action = actions.get(concept["code"])
        card = knowledge.wording.cards.get(concept["code"])
        if card is not None and action is None:
            out += _card(number, concept, card, rules, shipped, meanings)
        else:
            out += _topic(number, concept, action, rules, shipped, meanings, activities)

    out += _valuesets(resources.get("ValueSet", {}))
    out += _unverified_orders(activities)
    out += _questionnaire(resources.get("Questionnaire", {}))
    return "\n".join(_strip(out)).rstrip("\n") + "\n"


# --- one topic ------------------------------------------------------------------------------


def _card(
    number: int,
    concept: Mapping[str, Any],
    card: CardText,
    rules: Mapping[str, Any],
    shipped: Mapping[str, Any],
    meanings: Mapping[tuple[str, str], str],
) -> list[str]:
    """A patient-view card that groups recommendations; its wording is in card-text.toml."""
    code = concept["code"]
    held = ", ".join(f"`{topic}`" for topic in card.recommendations)
    out = [f"## {number}. `{code}`: {concept['display']}", "", concept.get("definition", ""), ""]
    out += [f"**Holds, in this order:** {held} (wording: `card-text.toml` `[cards.{code}]`).", ""]
    if code in rules:
        out += [f"**Thresholds** (`rules.toml` section `[{code}]`):", ""]
        out += _thresholds(code, rules[code], shipped.get(code, {}), meanings)
    return out


def _topic(
    number: int,
    concept: Mapping[str, Any],
    action: Mapping[str, Any] | None,
    rules: Mapping[str, Any],
    shipped: Mapping[str, Any],
    meanings: Mapping[tuple[str, str], str],
    activities: Mapping[str, Resource],
) -> list[str]:
    code = concept["code"]
    out = [f"## {number}. `{code}`: {concept['display']}", ""]
    if action is None:
        return [*out, "*No PlanDefinition action for this topic: the service never sends it.*", ""]
    out += [f"**Card:** {action.get('title', concept['display'])}", ""]
    if action.get("description"):
        out += [action["description"], ""]
    out += [f"**Hooks:** {', '.join(f'`{hook}`' for hook in _hooks(action)) or 'none'}", ""]
    conditions = [
        c.get("expression", {}).get("description", "") for c in action.get("condition", [])
    ]
    out += [f"**When it fires:** {' '.join(c for c in conditions if c) or 'not stated'}", ""]
    for doc in action.get("documentation", []):
        if doc.get("type") == "documentation" and doc.get("label") == "Cautions":
            out += [f"**Cautions:** {doc.get('display', '')}", ""]

    if code in rules:
        out += [f"**Thresholds** (`rules.toml` section `[{code}]`):", ""]
        out += _thresholds(code, rules[code], shipped.get(code, {}), meanings)
    else:
        out += ["**Thresholds:** none of its own in `rules.toml`.", ""]

    out += ["**Suggestions:**", ""]
    suggestions = list(_suggestions(action, activities))
    out += suggestions or ["- None: advice only."]
    out.append("")

    out += ["**Evidence:**", ""]
    for doc in action.get("documentation", []):
        if doc.get("type") == "citation":
            label = doc.get("label", "source")
            link = f"[{label}]({doc['url']})" if doc.get("url") else label
            out.append(f"- {link}: {doc.get('display', '')}".rstrip())
    out.append("")
    return out


def _suggestions(action: Mapping[str, Any], activities: Mapping[str, Resource]) -> Iterable[str]:
    if "definitionCanonical" in action:
        yield "- " + _activity(action["definitionCanonical"], activities)
    for sub in action.get("action", []):
        title = sub.get("title", "(untitled)")
        if "definitionCanonical" in sub:
            yield f"- **{title}**: " + _activity(sub["definitionCanonical"], activities, title)
        elif _action_type(sub) == "remove":
            yield f"- **{title}**: deletes the drafted order (no new order)."
        else:
            yield f"- **{title}**"


def _activity(canonical: str, activities: Mapping[str, Resource], label: str = "") -> str:
    """An ActivityDefinition in words: title (unless the label says it), id, kind, code, dosage."""
    definition = activities.get(canonical)
    if definition is None:
        return f"`{canonical}` (missing ActivityDefinition)"
    title = definition.get("title", definition["id"])
    head = f"`{definition['id']}`, {definition['kind']}"
    head = head if title == label else f"{title} ({head})"
    if definition["kind"] == "MedicationRequest":
        dosage = "; ".join(d["text"] for d in definition.get("dosage", []) if d.get("text"))
        text = f"{head}: {_concept(definition.get('productCodeableConcept', {}))}"
        return text + (f"; dosage: {dosage}" if dosage else "")
    concept = definition.get("code", {})
    text = f"{head}: {_concept(concept)}"
    order_text = concept.get("text")
    return text + (f"; order text: {order_text}" if order_text and concept.get("coding") else "")


def _concept(concept: Mapping[str, Any]) -> str:
    codings = concept.get("coding", [])
    if not codings:
        return f'no code, text only: "{concept.get("text", "")}"'
    parts = []
    for coding in codings:
        system = SYSTEM_NAMES.get(coding.get("system", ""), coding.get("system", "?"))
        flag = " **UNVERIFIED code**" if not is_verified(coding) else ""
        parts.append(f"{system} `{coding.get('code')}` {coding.get('display', '')}".rstrip() + flag)
    return ", ".join(parts)


def _hooks(action: Mapping[str, Any]) -> list[str]:
    return [t["name"] for t in action.get("trigger", []) if t.get("name")]


def _action_type(action: Mapping[str, Any]) -> str | None:
    for coding in action.get("type", {}).get("coding", []):
        code = coding.get("code")
        return code if isinstance(code, str) else None
    return None


def _anchor(number: int, concept: Mapping[str, Any]) -> str:
    """The GitHub-style anchor of the topic's heading."""
    heading = f"{number}. {concept['code']}: {concept['display']}".lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading))


# --- thresholds -----------------------------------------------------------------------------


def _thresholds(
    section: str,
    values: Mapping[str, Any],
    shipped: Mapping[str, Any],
    meanings: Mapping[tuple[str, str], str],
) -> list[str]:
    out = ["| Key | Value | Meaning |", "|---|---|---|"]
    for key, value in values.items():
        shown = f"`{_cell(format_value(value))}`"
        if key in shipped and shipped[key] != value:
            shown += f" (site; shipped `{_cell(format_value(shipped[key]))}`)"
        elif key not in shipped:
            shown += " (site only)"
        out.append(f"| `{key}` | {shown} | {_cell(meanings.get((section, key), ''))} |")
    return [*out, ""]


def format_value(value: Any) -> str:
    """A rules value as TOML writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {format_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


# --- value sets, unverified codes, questionnaire --------------------------------------------


def _valuesets(by_url: Mapping[str, Resource]) -> list[str]:
    members = {url: _expand(url, by_url, ()) for url in by_url}
    out = [
        "## Value sets",
        "",
        (
            "Every code the service reads is in one of these ValueSets "
            "(`fhir_profiles/ValueSet-<id>.json`). "
            "Grouping sets count the members of the sets they include."
        ),
        "",
        "| ValueSet | Title | Codes | UNVERIFIED | RxNorm term types (release) |",
        "|---|---|---|---|---|",
    ]
    for url in sorted(by_url, key=lambda u: by_url[u]["id"]):
        codes = members[url]
        unverified = sum(1 for member in codes.values() if not member.verified)
        out.append(
            f"| `{by_url[url]['id']}` | {_cell(by_url[url].get('title', ''))} | "
            f"{len(codes)} | {unverified} | {_cell(_term_types(codes.values()))} |"
        )
    out.append("")

    flagged: dict[tuple[str, str], dict[str, Any]] = {}
    for url in sorted(by_url, key=lambda u: by_url[u]["id"]):
        for include in by_url[url].get("compose", {}).get("include", []):
            for concept in include.get("concept", []):
                if is_verified(concept):
                    continue
                key = (include.get("system", ""), concept["code"])
                entry = flagged.setdefault(
                    key,
                    {"display": concept.get("display", ""), "source": _source(concept), "sets": []},
                )
                entry["sets"].append(by_url[url]["id"])
    out += [
        "### UNVERIFIED codes",
        "",
        (
            "These codes are matched, but a card that relied on one says so. Check each in the "
            "terminology's own browser before production use."
        ),
        "",
        "| System | Code | Display | ValueSets | Why unverified |",
        "|---|---|---|---|---|",
    ]
    for (system, code), entry in sorted(flagged.items()):
        out.append(
            f"| {SYSTEM_NAMES.get(system, system)} | `{code}` | {_cell(entry['display'])} | "
            f"{', '.join(f'`{s}`' for s in entry['sets'])} | {_cell(entry['source'])} |"
        )
    return [*out, ""]


@dataclass(frozen=True)
class _Member:
    verified: bool
    term_type: str
    release: str


def _expand(
    url: str, by_url: Mapping[str, Resource], trail: tuple[str, ...]
) -> dict[tuple[str, str], _Member]:
    codes: dict[tuple[str, str], _Member] = {}
    if url in trail or url not in by_url:
        return codes
    for include in by_url[url].get("compose", {}).get("include", []):
        for nested in include.get("valueSet", []):
            codes.update(_expand(nested, by_url, (*trail, url)))
        rxnorm = include.get("system") == RXNORM
        term_type = _rxnorm_term_type(include) if rxnorm else ""
        release = str(include.get("version", "unstated")) if rxnorm else ""
        for concept in include.get("concept", []):
            codes[(include.get("system", ""), concept["code"])] = _Member(
                is_verified(concept), term_type, release
            )
    return codes


def _rxnorm_term_type(include: Mapping[str, Any]) -> str:
    for extension in include.get("extension", []):
        if extension.get("url") == RXNORM_CONCEPT_EXTENSION:
            for part in extension.get("extension", []):
                if part.get("url") == "termType":
                    return str(part.get("valueCode", "?"))
    return "?"


def _term_types(members: Iterable[_Member]) -> str:
    """``IN 1, BN 3, SCD 12 (2025-10-06 ...)`` per release: what kind of RxNorm codes a set holds."""
    by_release: dict[str, Counter[str]] = {}
    for member in members:
        if member.release:
            by_release.setdefault(member.release, Counter())[member.term_type] += 1
    return "; ".join(
        ", ".join(f"{tty} {n}" for tty, n in sorted(counts.items())) + f" ({release})"
        for release, counts in sorted(by_release.items())
    )


def _unverified_orders(activities: Mapping[str, Resource]) -> list[str]:
    rows = []
    for url in sorted(activities):
        definition = activities[url]
        concept = definition.get("productCodeableConcept") or definition.get("code") or {}
        codings = concept.get("coding", [])
        if not codings:
            text = _cell(concept.get("text", ""))
            rows.append(f'| `{definition["id"]}` | no code: text only ("{text}") |')
        for coding in codings:
            if not is_verified(coding):
                system = SYSTEM_NAMES.get(coding.get("system", ""), coding.get("system", ""))
                rows.append(
                    f"| `{definition['id']}` | {system} `{coding.get('code')}` "
                    f"{_cell(coding.get('display', ''))}: UNVERIFIED ({_cell(_source(coding))}) |"
                )
    if not rows:
        return []
    return [
        "### Suggested orders with an UNVERIFIED code or no code",
        "",
        "| ActivityDefinition | Code |",
        "|---|---|",
        *rows,
        "",
    ]


def _questionnaire(by_url: Mapping[str, Resource]) -> list[str]:
    questionnaire = by_url.get(BPI_QUESTIONNAIRE)
    if questionnaire is None:
        return []
    out = [
        "## Brief Pain Inventory questionnaire",
        "",
        f"`{BPI_QUESTIONNAIRE}`: {questionnaire.get('description', '')}",
        "",
        "| linkId | Question | Answer |",
        "|---|---|---|",
    ]
    for item in _leaf_items(questionnaire.get("item", [])):
        bounds = {
            e["url"].rsplit("/", 1)[-1]: e.get("valueInteger") for e in item.get("extension", [])
        }
        answer = item["type"]
        if "minValue" in bounds and "maxValue" in bounds:
            answer += f" {bounds['minValue']}-{bounds['maxValue']}"
        out.append(f"| `{item['linkId']}` | {_cell(item.get('text', ''))} | {answer} |")
    return [*out, ""]


def _leaf_items(items: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for item in items:
        if item.get("type") == "group":
            yield from _leaf_items(item.get("item", []))
        else:
            yield item


# --- helpers --------------------------------------------------------------------------------


def _source(element: Mapping[str, Any]) -> str:
    for extension in element.get("extension", []):
        if extension.get("url") == VERIFICATION_EXTENSION:
            for part in extension.get("extension", []):
                if part.get("url") == "source":
                    return str(part.get("valueString", ""))
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _strip(lines: Iterable[str]) -> Iterable[str]:
    for block in lines:
        for line in block.split("\n"):
            yield line.rstrip()


def _code_system(resources: Mapping[str, Mapping[str, Resource]], url: str) -> Resource:
    try:
        return resources["CodeSystem"][url]
    except KeyError as error:
        raise KnowledgeError(f"the CodeSystem {url} is missing") from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cds_service.knowledge.rules_page",
        description="Write the human-readable rules page (Markdown) to standard output.",
    )
    parser.add_argument(
        "--profiles-dir",
        type=Path,
        default=None,
        help="folder of the FHIR knowledge artifacts (default: the shipped fhir_profiles)",
    )
    parser.add_argument(
        "--rules-file",
        type=Path,
        default=None,
        help="a site's rules file to merge over the shipped rules.toml (default: none)",
    )
    args = parser.parse_args(argv)
    try:
        page = render_rules_page(args.profiles_dir or default_profiles_dir(), args.rules_file)
    except KnowledgeError as error:
        print(f"rules_page: {error}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(page.encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
