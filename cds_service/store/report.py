"""Acceptance and override rates per card topic and per recommendation, from the issued cards
and their feedback.

By card: a card counts once as accepted or overridden however many feedback items it got.
Feedback for a card the service has no record of (issued before recording began, or by another
deployment) is shown under ``UNKNOWN_TOPIC`` so that nothing received is hidden.

By recommendation: a grouped card holds several (``issued_recommendations``). A recommendation
counts as issued and overridden with each card that held it, and as accepted when a suggestion
that carries it out was accepted (or, when the client named no suggestion of ours, when it was
the card's only recommendation).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, cast

from sqlalchemy import func, select, true

from cds_service.knowledge.loader import OVERRIDE_SYSTEM

from .database import Database
from .schema import feedback, issued_cards, issued_recommendations

UNKNOWN_TOPIC = "(card not on record)"
NO_REASON = "(no reason)"


@dataclass
class TopicStats:
    topic: str
    issued: int = 0
    accepted: int = 0
    overridden: int = 0
    override_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.issued if self.issued else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.issued if self.issued else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "acceptance_rate": self.acceptance_rate,
            "override_rate": self.override_rate,
        }


def topic_report(database: Database, since: date | None = None) -> list[TopicStats]:
    """Cards issued on or after ``since`` (all when None) and their feedback, by topic."""
    stats: dict[str, TopicStats] = {}

    def of(topic: str | None) -> TopicStats:
        name = topic or UNKNOWN_TOPIC
        return stats.setdefault(name, TopicStats(name))

    in_window = issued_cards.c.issued_on >= since if since else true()
    topic = issued_cards.c.topic
    joined = feedback.outerjoin(issued_cards, feedback.c.card_uuid == issued_cards.c.card_uuid)
    feedback_in_window = (
        ((issued_cards.c.card_uuid.is_not(None)) & in_window)
        | ((issued_cards.c.card_uuid.is_(None)) & (feedback.c.received_on >= since))
        if since
        else true()
    )
    with database.durable.connect() as connection:
        issued = connection.execute(select(topic, func.count()).where(in_window).group_by(topic))
        for name, count in cast("Iterable[tuple[str | None, int]]", issued):
            of(name).issued = count
        outcomes = (
            select(topic, feedback.c.outcome, func.count(feedback.c.card_uuid.distinct()))
            .select_from(joined)
            .where(feedback_in_window)
            .group_by(topic, feedback.c.outcome)
        )
        for name, outcome, count in cast(
            "Iterable[tuple[str | None, str, int]]", connection.execute(outcomes)
        ):
            setattr(of(name), outcome, count)
        reasons = (
            select(topic, feedback.c.override_system, feedback.c.override_code, func.count())
            .select_from(joined)
            .where(feedback_in_window, feedback.c.outcome == "overridden")
            .group_by(topic, feedback.c.override_system, feedback.c.override_code)
        )
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for name, system, code, count in cast(
            "Iterable[tuple[str | None, str | None, str | None, int]]", connection.execute(reasons)
        ):
            label = _reason_label(system, code)
            bucket = counts[name or UNKNOWN_TOPIC]
            bucket[label] = bucket.get(label, 0) + count
    for name, by_reason in counts.items():
        of(name).override_reasons = dict(sorted(by_reason.items()))
    return sorted(stats.values(), key=lambda s: (s.topic == UNKNOWN_TOPIC, s.topic))


def recommendation_report(database: Database, since: date | None = None) -> list[TopicStats]:
    """Recommendations held by cards issued on or after ``since`` (all when None), and their feedback."""
    stats: dict[str, TopicStats] = {}

    def of(recommendation: str) -> TopicStats:
        return stats.setdefault(recommendation, TopicStats(recommendation))

    held = issued_recommendations
    cards_in_window = select(held).join(issued_cards, issued_cards.c.card_uuid == held.c.card_uuid)
    if since:
        cards_in_window = cards_in_window.where(issued_cards.c.issued_on >= since)
    rows = cards_in_window.subquery()
    with database.durable.connect() as connection:
        holding: dict[str, set[str]] = defaultdict(set)  # card -> its recommendations
        carries: dict[str, str] = {}  # suggestion -> the recommendation it carries out
        for card_uuid, recommendation, suggestion_uuid in cast(
            "Iterable[tuple[str, str, str]]", connection.execute(select(rows))
        ):
            if suggestion_uuid:
                carries[suggestion_uuid] = recommendation
            else:
                holding[card_uuid].add(recommendation)
                of(recommendation).issued += 1
        items = cast("Iterable[tuple[str, str, str | None, str | None, str | None]]", connection.execute(
            select(feedback.c.card_uuid, feedback.c.outcome, feedback.c.accepted_suggestions,
                   feedback.c.override_system, feedback.c.override_code)
            .where(feedback.c.card_uuid.in_(select(rows.c.card_uuid).where(rows.c.suggestion_uuid == "")))
        ))
        accepted: set[tuple[str, str]] = set()
        overridden: set[tuple[str, str]] = set()
        reasons: dict[str, dict[str, int]] = defaultdict(dict)
        for card_uuid, outcome, suggestions, system, code in items:
            on_this_card = holding[card_uuid]
            if outcome == "accepted":
                taken = json.loads(suggestions) if suggestions else []
                named = {carries[u] for u in taken if u in carries}
                if not named and len(on_this_card) == 1:
                    named = set(on_this_card)
                accepted |= {(card_uuid, r) for r in named}
            elif outcome == "overridden":
                overridden |= {(card_uuid, r) for r in on_this_card}
                label = _reason_label(system, code)
                for r in on_this_card:
                    reasons[r][label] = reasons[r].get(label, 0) + 1
    for _, recommendation in accepted:
        of(recommendation).accepted += 1
    for _, recommendation in overridden:
        of(recommendation).overridden += 1
    for recommendation, by_reason in reasons.items():
        of(recommendation).override_reasons = dict(sorted(by_reason.items()))
    return sorted(stats.values(), key=lambda s: s.topic)


def _reason_label(system: str | None, code: str | None) -> str:
    """Our own codes by name; a client's other code system is kept apart with its URL."""
    if code is None:
        return NO_REASON
    return code if system == OVERRIDE_SYSTEM else f"{system or '?'}|{code}"


def format_report(report: list[TopicStats], since: date | None, by: str = "card topic") -> str:
    """A plain-text table for a terminal."""
    window = f"cards issued since {since.isoformat()}" if since else "all cards on record"
    lines = [
        f"AIMSS CDS feedback by {by} ({window})",
        "",
        f"{by.split()[-1]:<28} {'issued':>7} {'accepted':>9} {'overridden':>11} {'accept%':>8} "
        f"{'override%':>10}  override reasons",
    ]
    for row in report:
        reasons = ", ".join(f"{code} {n}" for code, n in row.override_reasons.items()) or "-"
        lines.append(
            f"{row.topic:<28} {row.issued:>7} {row.accepted:>9} {row.overridden:>11} "
            f"{_percent(row.acceptance_rate):>8} {_percent(row.override_rate):>10}  {reasons}"
        )
    if not report:
        lines.append("(no cards issued and no feedback received)")
    return "\n".join(lines)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"
