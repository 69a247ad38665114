"""Findings into CDS Hooks cards, worded by ``card-text.toml``.

Grouped (patient-view by default, DESIGN §4 Presentation): each finding goes on the card of
its group (aimss-plan, bone-health, red-flags) or on a card of its own; a group's card lists
its recommendations under the ``org.example.aimss-cds.recommendations`` extension, every
suggestion names its recommendation, and data that could not be read is said on every card
(a data-incomplete card only when nothing else shows). Ungrouped (order-time hooks, or a site
that wants it): one card per topic. Either way the most urgent card comes first.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from cds_service.clinical.activities import instantiate
from cds_service.clinical.findings import URGENCY, Datum, Finding, Order, most_urgent
from cds_service.hooks.protocol import (
    RECOMMENDATIONS_EXTENSION,
    SUGGESTION_EXTENSION,
    SUMMARY_MAX,
    Action,
    Card,
    Coding,
    Source,
    Suggestion,
)
from cds_service.knowledge.loader import OVERRIDE_SYSTEM, TOPIC_SYSTEM, Knowledge
from cds_service.knowledge.wording import CardText, RecommendationText, Template, Wording

NewId = Callable[[], str]

DATA_INCOMPLETE = "data-incomplete"
REMOVE_DRAFT = "remove-draft"


def new_uuid() -> str:
    return str(uuid.uuid4())


def render_cards(
    findings: Iterable[Finding],
    knowledge: Knowledge,
    patient_id: str,
    today: date,
    *,
    grouped: bool,
    new_id: NewId = new_uuid,
) -> list[Card]:
    """The cards of one hook call, most urgent first; a topic appears on one card only."""
    unique = list({f.topic: f for f in reversed(list(findings))}.values())[::-1]
    writer = _Writer(knowledge, patient_id, today, new_id)
    if not grouped:
        cards = [writer.card([finding], None, None) for finding in unique]
    else:
        incomplete = next((f for f in unique if f.topic == DATA_INCOMPLETE), None)
        rest = [f for f in unique if f.topic != DATA_INCOMPLETE]
        groups: dict[str, list[Finding]] = {}
        for finding in rest:
            group = knowledge.wording.card_of(finding.topic)
            groups.setdefault(group.topic if group else finding.topic, []).append(finding)
        cards = [
            writer.card(members, knowledge.wording.cards.get(topic), incomplete)
            for topic, members in groups.items()
        ]
        if not cards and incomplete is not None:
            cards = [writer.card([incomplete], None, None)]
    rank = {topic: number for number, topic in enumerate(knowledge.wording.cards)}
    return sorted(cards, key=lambda card: (URGENCY[card.indicator], rank.get(_topic(card), len(rank))))


def _topic(card: Card) -> str:
    return card.source.topic.code if card.source.topic else ""


@dataclass(frozen=True)
class _Worded:
    """A finding with its wording and the values its templates see."""

    finding: Finding
    text: RecommendationText
    values: Mapping[str, str]


class _Writer:
    def __init__(self, knowledge: Knowledge, patient_id: str, today: date, new_id: NewId) -> None:
        self.knowledge = knowledge
        self.wording: Wording = knowledge.wording
        self.patient_id = patient_id
        self.today = today
        self.new_id = new_id

    def card(self, findings: Sequence[Finding], group: CardText | None, incomplete: Finding | None) -> Card:
        order = group.recommendations if group else ()
        worded = sorted(
            (self._worded(f) for f in findings),
            key=lambda w: order.index(w.finding.topic) if w.finding.topic in order else 0,
        )
        topic = group.topic if group else worded[0].finding.topic
        indicator = most_urgent(*(w.finding.indicator for w in worded))
        if group:
            indicator = most_urgent(indicator, group.at_least)
        summary = self._summary(worded, group)
        suggestions = self._suggestions(worded, group)
        recommendation = self.knowledge.recommendations
        lead = next(
            (c for w in worded for c in recommendation[w.finding.topic].citations if c.url), None
        )
        return Card(
            uuid=self.new_id(),
            summary=summary,
            detail=self._detail(worded, incomplete),
            indicator=indicator,
            source=Source(
                label=group.source if group else f"AIMSS CDS · {lead.label if lead else topic}",
                url=lead.url if lead else None,
                topic=Coding(system=TOPIC_SYSTEM, code=topic, display=self.knowledge.topics[topic]),
            ),
            suggestions=suggestions or None,
            selectionBehavior=("any" if len(suggestions) > 1 else "at-most-one") if suggestions else None,
            overrideReasons=[
                Coding(system=OVERRIDE_SYSTEM, code=code, display=display)
                for code, display in self.knowledge.override_reasons
            ],
            extension={
                RECOMMENDATIONS_EXTENSION: [self._coding(w.finding.topic) for w in worded]
            } if group else None,
        )

    def _coding(self, topic: str) -> dict[str, str]:
        return {"system": TOPIC_SYSTEM, "code": topic, "display": self.knowledge.topics[topic]}

    def _worded(self, finding: Finding) -> _Worded:
        wording = self.wording
        values = {name: wording.show(value) for name, value in finding.params.items()}
        unavailable = finding.params.get("unavailable")
        if isinstance(unavailable, tuple):  # data sources, named in the clinician's words
            values["unavailable"] = wording.join([wording.sources.get(s, s) for s in unavailable])
        names = [wording.activities[a].name for order in finding.orders for a in order.activities]
        if names:
            values["orders"] = wording.join(list(dict.fromkeys(names)))
        return _Worded(finding, wording.recommendations[finding.topic], values)

    # --- summary ------------------------------------------------------------------------

    def _summary(self, worded: Sequence[_Worded], group: CardText | None) -> str:
        if group is None:
            (only,) = worded
            return _fit(_render(only.text.title, only.values))
        by_topic = {w.finding.topic: w for w in worded}
        actions: list[str] = []
        covered: set[str] = set()
        for topic in group.summary_order:
            if topic in by_topic and topic not in covered:
                covered.update(by_topic[topic].text.covers)
                actions.append(_render(by_topic[topic].text.action, by_topic[topic].values))
        values = _merged(worded)
        for count in range(len(actions), 0, -1):
            summary = _render(group.summary, {**values, "actions": "; ".join(actions[:count])})
            if len(summary) <= SUMMARY_MAX:
                return _capital(summary)
        return _fit(_render(group.summary, {**values, "actions": actions[0]}))

    # --- detail -------------------------------------------------------------------------

    def _detail(self, worded: Sequence[_Worded], incomplete: Finding | None) -> str:
        wording = self.wording
        said: set[str] = set()  # a line two recommendations share (a caution) is said once
        lines = [f"- {paragraph}" for w in worded if (paragraph := self._paragraph(w, said))]
        data = _unique(self._datum(d) for w in worded for d in w.finding.evidence)
        if data:
            lines += ["", _render(wording.data, {"data": "; ".join(data)})]
        if incomplete is not None:
            values = self._worded(incomplete).values
            lines += ["", _render(wording.incomplete, values)]
        citations = self.knowledge.recommendations
        links = _unique(
            f"[{c.label}]({c.url})" if c.url else c.label
            for w in worded for c in citations[w.finding.topic].citations if c.label in w.text.cite
        )
        if links:
            lines += ["", f"{wording.evidence} " + " · ".join(links)]
        return "\n".join(lines)

    def _paragraph(self, worded: _Worded, said: set[str]) -> str:
        text, values = worded.text, worded.values
        parts = [line for template in text.detail if (line := template.render(values))]
        parts += [line for note in worded.finding.notes
                  if note in text.notes and (line := text.notes[note].render(values))]
        fresh = []
        for line in (_capital(p) for p in parts):
            if line not in said:
                said.add(line)
                fresh.append(line)
        return " ".join(fresh)

    def _datum(self, datum: Datum) -> str:
        values = {"what": datum.what}
        if datum.value:
            values["value"] = datum.value
        if datum.when:
            values["date"] = datum.when.isoformat()
        template = self.wording.datum_since if datum.since else self.wording.datum
        return _render(template, values)

    # --- suggestions --------------------------------------------------------------------

    def _suggestions(self, worded: Sequence[_Worded], group: CardText | None) -> list[Suggestion]:
        order = group.summary_order if group else ()
        ranked = sorted(worded, key=lambda w: order.index(w.finding.topic) if w.finding.topic in order else 0)
        seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
        suggestions = []
        for w in ranked:
            for order_ in w.finding.orders:
                key = (tuple(sorted(order_.activities)), order_.deletes)
                if key not in seen:
                    seen.add(key)
                    suggestions.append(self._suggestion(order_, w))
        if group is not None:  # one main action on a plan card: its first recommended suggestion
            first = next((s for s in suggestions if s.isRecommended), None)
            for suggestion in suggestions:
                suggestion.isRecommended = True if suggestion is first else None
        return suggestions

    def _suggestion(self, order: Order, worded: _Worded) -> Suggestion:
        label = self._label(order, worded)
        actions = [
            Action(type="delete", description=label, resourceId=resource_id)
            for resource_id in order.deletes
        ]
        for activity_id in order.activities:
            actions.append(
                Action(
                    type="create",
                    description=self.wording.activities[activity_id].label,
                    resource=instantiate(self.knowledge.activities[activity_id], self.patient_id, self.today),
                )
            )
        return Suggestion(
            label=label,
            uuid=self.new_id(),
            isRecommended=order.recommended or None,
            actions=actions or None,
            extension={SUGGESTION_EXTENSION: self._coding(worded.finding.topic)},
        )

    def _label(self, order: Order, worded: _Worded) -> str:
        activities = self.wording.activities
        key = "+".join([REMOVE_DRAFT] * len(order.deletes) + list(order.activities))
        items = self.wording.join([activities[a].name for a in order.activities])
        values = {**worded.values, "items": items}
        template = worded.text.suggestions.get(key)
        if template is None and len(order.activities) == 1 and not order.deletes:
            return activities[order.activities[0]].label
        if template is None:
            template = worded.text.together
        if template is not None and (label := template.render(values)):
            return _capital(label)
        return "; ".join(activities[a].label for a in order.activities) or key


def _render(template: Template, values: Mapping[str, str]) -> str:
    """A template that must say something: its last alternative with unknown values marked
    (a card is never dropped for its wording; the tests keep shipped wording complete)."""
    rendered = template.render(values)
    if rendered is None:
        rendered = template.alternatives[-1].format_map(_Unknown(values))
    return rendered


class _Unknown(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "unknown"


def _merged(worded: Sequence[_Worded]) -> dict[str, str]:
    values: dict[str, str] = {}
    for w in worded:
        for name, value in w.values.items():
            values.setdefault(name, value)
    return values


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fit(summary: str) -> str:
    summary = _capital(summary)
    if len(summary) <= SUMMARY_MAX:
        return summary
    return re.sub(r"\s+\S*$", "", summary[: SUMMARY_MAX - 1]) + "…"
