"""Acceptance and override rates per card topic, from the issued cards and their feedback.

A card counts once as accepted or overridden however many feedback items it got. Feedback for
a card the service has no record of (issued before recording began, or by another deployment)
is shown under ``UNKNOWN_TOPIC`` so that nothing received is hidden.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, cast

from sqlalchemy import func, select, true

from cds_service.knowledge.loader import OVERRIDE_SYSTEM

from .database import Database
from .schema import feedback, issued_cards

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


def _reason_label(system: str | None, code: str | None) -> str:
    """Our own codes by name; a client's other code system is kept apart with its URL."""
    if code is None:
        return NO_REASON
    return code if system == OVERRIDE_SYSTEM else f"{system or '?'}|{code}"


def format_report(report: list[TopicStats], since: date | None) -> str:
    """A plain-text table for a terminal."""
    window = f"cards issued since {since.isoformat()}" if since else "all cards on record"
    lines = [
        f"AIMSS CDS feedback by topic ({window})",
        "",
        f"{'topic':<28} {'issued':>7} {'accepted':>9} {'overridden':>11} {'accept%':>8} "
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
