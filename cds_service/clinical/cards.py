"""Turn findings into CDS Hooks cards: explained, cited, with ready-to-sign R4 suggestions."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date

from cds_service.clinical.activities import instantiate
from cds_service.clinical.facts.model import DataSource
from cds_service.clinical.findings import Finding, Order
from cds_service.hooks.protocol import SUMMARY_MAX, Action, Card, Coding, Source, Suggestion
from cds_service.knowledge.loader import OVERRIDE_SYSTEM, TOPIC_SYSTEM, Knowledge, Recommendation

NewId = Callable[[], str]

SOURCE_PHRASES: Mapping[DataSource, str] = {
    DataSource.MEDICATIONS: "medications",
    DataSource.BONE_DENSITY: "bone density tests",
    DataSource.PAIN: "pain and BPI scores",
    DataSource.CONDITIONS: "conditions",
    DataSource.LABS: "TSH, vitamin D and PHQ-9 results",
    DataSource.INTERVENTIONS: "referrals and procedures",
}
"""Each data source as a clinician reads it on a card."""


def new_uuid() -> str:
    return str(uuid.uuid4())


def render_cards(
    findings: Iterable[Finding],
    knowledge: Knowledge,
    patient_id: str,
    today: date,
    new_id: NewId = new_uuid,
) -> list[Card]:
    """One card per topic, most urgent first (critical, warning, info)."""
    cards: dict[str, Card] = {}
    for finding in findings:
        if finding.topic not in cards:
            cards[finding.topic] = _card(finding, knowledge, patient_id, today, new_id)
    return sorted(cards.values(), key=lambda card: _URGENCY[card.indicator])


_URGENCY = {"critical": 0, "warning": 1, "info": 2}


def _card(
    finding: Finding, knowledge: Knowledge, patient_id: str, today: date, new_id: NewId
) -> Card:
    recommendation = knowledge.recommendations[finding.topic]
    suggestions = [_suggestion(order, knowledge, patient_id, today, new_id) for order in finding.orders]
    lead = recommendation.citations[0]
    return Card(
        uuid=new_id(),
        summary=finding.summary[:SUMMARY_MAX],  # a drug's name can make it long
        detail=_detail(finding, recommendation),
        indicator=finding.indicator,
        source=Source(
            label=f"AIMSS CDS · {lead.label}",
            url=lead.url or None,
            topic=Coding(
                system=TOPIC_SYSTEM, code=finding.topic, display=recommendation.topic_display
            ),
        ),
        suggestions=suggestions or None,
        selectionBehavior=_selection_behavior(suggestions),
        overrideReasons=[
            Coding(system=OVERRIDE_SYSTEM, code=code, display=display)
            for code, display in knowledge.override_reasons
        ],
    )


def _selection_behavior(suggestions: list[Suggestion]) -> str | None:
    """Independent suggestions may be taken together; a single one is taken or not."""
    if not suggestions:
        return None
    return "any" if len(suggestions) > 1 else "at-most-one"


def _detail(finding: Finding, recommendation: Recommendation) -> str:
    lines = ["**Why this card**", *(f"- {line}" for line in _evidence(finding)), ""]
    lines += ["**What to do**", finding.advice, "", "**Evidence**"]
    lines += [
        f"- [{c.label}]({c.url}): {c.display}" if c.url else f"- {c.label}: {c.display}"
        for c in recommendation.citations
    ]
    if finding.unverified_codes:
        lines += [
            "",
            "_Matched through codes marked UNVERIFIED in the AIMSS code reference: "
            f"{', '.join(finding.unverified_codes)}. Check the record._",
        ]
    return "\n".join(lines)


def _evidence(finding: Finding) -> tuple[str, ...]:
    if not finding.unreadable:
        return finding.evidence
    missing = ", ".join(sorted(SOURCE_PHRASES[source] for source in finding.unreadable))
    return (f"Could not be read from the EHR: {missing}.", *finding.evidence)


def _suggestion(
    order: Order, knowledge: Knowledge, patient_id: str, today: date, new_id: NewId
) -> Suggestion:
    actions = [
        Action(type="delete", description=f"Remove the draft order {resource_id}", resourceId=resource_id)
        for resource_id in order.deletes
    ]
    for activity_id in order.activities:
        definition = knowledge.activities[activity_id]
        actions.append(
            Action(
                type="create",
                description=definition.get("title", activity_id),
                resource=instantiate(definition, patient_id, today),
            )
        )
    return Suggestion(
        label=order.label,
        uuid=new_id(),
        isRecommended=order.recommended or None,
        actions=actions or None,
    )
