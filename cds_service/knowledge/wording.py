"""Card wording as data: ``card-text.toml`` beside the artifacts, checked at start-up.

A site rewords a card by editing that file, never the rules. A template is a string or a list
of alternatives (the first whose placeholders are all known is used); placeholders are plain
``{name}``s from the file's ``[parameters]``, so a typo or an unbalanced brace stops start-up
with the key named (``WordingError``) instead of reaching a clinician.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, cast

ParamValue = str | int | float | date | tuple[str, ...]
"""A value a rule gives a template; lists are joined ("a, b and c"), numbers shown as %g."""

SERVICE_PARAMETERS = frozenset({"orders", "items", "actions", "data", "unavailable"})
"""Filled by the card renderer rather than a rule (still declared in [parameters])."""
DATUM_FIELDS = frozenset({"what", "value", "date"})
Indicator = Literal["info", "warning", "critical"]
INDICATORS = ("info", "warning", "critical")


class WordingError(ValueError):
    """card-text.toml is broken; the message names the key."""


@dataclass(frozen=True)
class Template:
    """Alternatives, most specific first; each with the placeholders it needs."""

    alternatives: tuple[str, ...]
    needs: tuple[frozenset[str], ...]

    def render(self, values: Mapping[str, str]) -> str | None:
        """The first alternative whose placeholders are all in ``values``; None if none is."""
        for text, needs in zip(self.alternatives, self.needs, strict=True):
            if needs <= values.keys():
                return text.format_map(values)
        return None


@dataclass(frozen=True)
class RecommendationText:
    topic: str
    title: Template
    action: Template
    detail: tuple[Template, ...]
    notes: Mapping[str, Template]
    cite: tuple[str, ...]
    together: Template | None
    suggestions: Mapping[str, Template]
    covers: tuple[str, ...]


@dataclass(frozen=True)
class CardText:
    """A card that groups recommendations (DESIGN §4 Presentation)."""

    topic: str
    source: str
    recommendations: tuple[str, ...]
    summary_order: tuple[str, ...]
    summary: Template
    at_least: Indicator


@dataclass(frozen=True)
class ActivityText:
    label: str
    name: str


@dataclass(frozen=True)
class Wording:
    parameters: frozenset[str]
    recommendations: Mapping[str, RecommendationText]
    cards: Mapping[str, CardText]
    activities: Mapping[str, ActivityText]
    datum: Template
    datum_since: Template
    data: Template
    evidence: str
    incomplete: Template
    list_separator: str
    list_last: str
    sources: Mapping[str, str]
    """Each kind of data (``DataSource`` value) as a clinician reads it."""

    def card_of(self, recommendation: str) -> CardText | None:
        return next((c for c in self.cards.values() if recommendation in c.recommendations), None)

    def card_topic(self, recommendation: str) -> str | None:
        """The topic of the grouped card that holds this recommendation, if any."""
        card = self.card_of(recommendation)
        return card.topic if card else None

    def join(self, items: Sequence[str]) -> str:
        """"a", "a and b", "a, b and c" as the file says."""
        if len(items) <= 1:
            return "".join(items)
        return self.list_separator.join(items[:-1]) + self.list_last + items[-1]

    def show(self, value: ParamValue) -> str:
        if isinstance(value, tuple):
            return self.join(value)
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, date):
            return value.isoformat()
        return str(value)


def load_wording(
    path: Path,
    citations: Mapping[str, Iterable[str]],
    topics: Iterable[str],
    activities: Iterable[str],
) -> Wording:
    """Read and check the file against the topics, each topic's citation labels and the
    orderable activities. Every recommendation with citations must have wording."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise WordingError(f"cannot read: {error}") from error
    checker = _Checker(data)
    known_topics = set(topics)
    recommendations = {
        topic: checker.recommendation(topic, table, set(citations.get(topic, ())))
        for topic, table in checker.table(data, "recommendations").items()
    }
    for topic in recommendations:
        if topic not in known_topics:
            raise WordingError(f"[recommendations.{topic}]: not a code of the topics CodeSystem")
    missing = sorted(set(citations) - set(recommendations))
    if missing:
        raise WordingError(f"no [recommendations.<topic>] wording for {', '.join(missing)}")
    cards = {
        topic: checker.card(topic, table, recommendations)
        for topic, table in checker.table(data, "cards").items()
    }
    placed: dict[str, str] = {}
    for card in cards.values():
        if card.topic not in known_topics:
            raise WordingError(f"[cards.{card.topic}]: not a code of the topics CodeSystem")
        for topic in card.recommendations:
            if topic in placed:
                raise WordingError(f"[cards.{card.topic}]: {topic} is already on [cards.{placed[topic]}]")
            placed[topic] = card.topic
    texts = {
        activity: checker.activity(activity, table)
        for activity, table in checker.table(data, "activities").items()
    }
    unlabelled = sorted(set(activities) - set(texts))
    if unlabelled:
        raise WordingError(f"no [activities.<id>] label for {', '.join(unlabelled)}")
    fmt = checker.table(data, "format")
    checker.only(fmt, "format", {"datum", "datum_since", "data", "evidence", "incomplete", "list_separator", "list_last"})
    sources = checker.table(data, "sources")
    if not all(isinstance(v, str) for v in sources.values()):
        raise WordingError("[sources]: every value must be a string")
    return Wording(
        parameters=checker.parameters,
        recommendations=recommendations,
        cards=cards,
        activities=texts,
        datum=checker.template(fmt, "format", "datum", DATUM_FIELDS),
        datum_since=checker.template(fmt, "format", "datum_since", DATUM_FIELDS),
        data=checker.template(fmt, "format", "data"),
        evidence=checker.text(fmt, "format", "evidence"),
        incomplete=checker.template(fmt, "format", "incomplete"),
        list_separator=checker.text(fmt, "format", "list_separator"),
        list_last=checker.text(fmt, "format", "list_last"),
        sources=sources,
    )


class _Checker:
    """Reads the parsed file, raising ``WordingError`` with the key of anything wrong."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        parameters = self.table(data, "parameters")
        self.parameters = frozenset(parameters)
        self.only(data, "the file", {"parameters", "format", "sources", "cards", "recommendations", "activities"})

    def table(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise WordingError(f"[{key}] must be a table")
        return value

    def only(self, table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise WordingError(f"{where}: unknown key(s) {', '.join(unknown)}")

    def text(self, table: Mapping[str, Any], where: str, key: str) -> str:
        value = table.get(key)
        if not isinstance(value, str):
            raise WordingError(f"{where}.{key}: must be a string")
        return value

    def template(
        self, table: Mapping[str, Any], where: str, key: str, fields: frozenset[str] | None = None
    ) -> Template:
        value = table.get(key)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise WordingError(f"{where}.{key}: must be a string or a list of strings")
        allowed = self.parameters if fields is None else fields
        return Template(tuple(value), tuple(self._needs(text, allowed, f"{where}.{key}") for text in value))

    def _needs(self, text: str, allowed: frozenset[str], where: str) -> frozenset[str]:
        try:
            parts = list(string.Formatter().parse(text))
        except ValueError as error:
            raise WordingError(f"{where}: {error} in {text!r}") from error
        needs = set()
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if spec or conversion or name not in allowed:
                listed = "one of " + ", ".join(sorted(allowed))
                raise WordingError(f"{where}: {{{name}}} in {text!r} is not a plain placeholder ({listed})")
            needs.add(name)
        return frozenset(needs)

    def recommendation(self, topic: str, table: Any, cited: set[str]) -> RecommendationText:
        where = f"recommendations.{topic}"
        if not isinstance(table, dict):
            raise WordingError(f"[{where}] must be a table")
        self.only(table, where, {"title", "action", "detail", "notes", "cite", "together", "suggestions", "covers"})
        cite = table.get("cite", [])
        if not isinstance(cite, list) or not all(isinstance(c, str) for c in cite):
            raise WordingError(f"{where}.cite: must be a list of citation labels")
        unknown = sorted(set(cite) - cited)
        if unknown:
            raise WordingError(
                f"{where}.cite: {', '.join(unknown)} not among this topic's PlanDefinition "
                f"citations ({', '.join(sorted(cited)) or 'none'})"
            )
        detail = table.get("detail", [])
        if not isinstance(detail, list) or not detail:
            raise WordingError(f"{where}.detail: must be a list of lines")
        notes = self.table(table, "notes")
        suggestions = self.table(table, "suggestions")
        covers = table.get("covers", [])
        if not isinstance(covers, list) or not all(isinstance(c, str) for c in covers):
            raise WordingError(f"{where}.covers: must be a list of topics")
        return RecommendationText(
            topic=topic,
            title=self.template(table, where, "title"),
            action=self.template(table, where, "action"),
            detail=tuple(self.template({"line": line}, f"{where}.detail[{i}]", "line") for i, line in enumerate(detail)),
            notes={key: self.template(notes, f"{where}.notes", key) for key in notes},
            cite=tuple(cite),
            together=self.template(table, where, "together") if "together" in table else None,
            suggestions={key: self.template(suggestions, f"{where}.suggestions", key) for key in suggestions},
            covers=tuple(covers),
        )

    def card(self, topic: str, table: Any, recommendations: Mapping[str, RecommendationText]) -> CardText:
        where = f"cards.{topic}"
        if not isinstance(table, dict):
            raise WordingError(f"[{where}] must be a table")
        self.only(table, where, {"source", "recommendations", "summary_order", "summary", "at_least"})
        held = self._topics(table, where, "recommendations")
        unknown = sorted(set(held) - set(recommendations))
        if unknown:
            raise WordingError(f"{where}.recommendations: no wording for {', '.join(unknown)}")
        order = self._topics(table, where, "summary_order")
        if set(order) != set(held):
            raise WordingError(f"{where}.summary_order: must list the same topics as recommendations")
        for held_topic in held:
            outside = sorted(set(recommendations[held_topic].covers) - set(held))
            if outside:
                raise WordingError(f"recommendations.{held_topic}.covers: {', '.join(outside)} not on [{where}]")
        at_least = table.get("at_least", "info")
        if at_least not in INDICATORS:
            raise WordingError(f"{where}.at_least: one of {', '.join(INDICATORS)}")
        return CardText(
            topic=topic,
            source=self.text(table, where, "source"),
            recommendations=held,
            summary_order=order,
            summary=self.template(table, where, "summary"),
            at_least=cast(Indicator, at_least),
        )

    def _topics(self, table: Mapping[str, Any], where: str, key: str) -> tuple[str, ...]:
        value = table.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise WordingError(f"{where}.{key}: must be a list of topics")
        if len(set(value)) != len(value):
            raise WordingError(f"{where}.{key}: lists a topic twice")
        return tuple(value)

    def activity(self, activity: str, table: Any) -> ActivityText:
        where = f"activities.{activity}"
        if not isinstance(table, dict):
            raise WordingError(f"[{where}] must be a table")
        self.only(table, where, {"label", "name"})
        return ActivityText(self.text(table, where, "label"), self.text(table, where, "name"))
