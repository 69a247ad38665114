"""Acceptance and override rates per tenant, by card topic and by recommendation, from the issued
cards and their feedback.

By card: a card counts once as accepted or overridden however many feedback items it got.
Feedback for a card the service has no record of (issued before recording began, by another
deployment, or to another tenant) is shown under ``UNKNOWN_TOPIC`` so that nothing received is
hidden. Cards a tenant's rollout mode kept silent are counted apart (``silent``): what would have
fired, never shown, so never accepted or overridden.

By recommendation: a grouped card holds several (``issued_recommendations``). A recommendation
counts as issued (or silent) and overridden with each card that held it, and as accepted when a
suggestion that carries it out was accepted (or, when the client named no suggestion of ours,
when it was the card's only recommendation). Only the feedback of the card's own tenant counts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, cast

from sqlalchemy import ColumnElement, func, select, true

from cds_service.knowledge.loader import OVERRIDE_SYSTEM

from .database import Database
from .schema import feedback, issued_cards, issued_recommendations
from .tenants import BEFORE_TENANTS

UNKNOWN_TOPIC = "(card not on record)"
NO_REASON = "(no reason)"
BEFORE_TENANTS_LABEL = "(before tenants)"


@dataclass
class TopicStats:
    topic: str
    issued: int = 0
    silent: int = 0
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


Report = dict[str, list[TopicStats]]
"""Topic rows by tenant."""


def tenant_report(database: Database, since: date | None = None, tenant: str | None = None) -> Report:
    """Cards issued on or after ``since`` (all when None) and their feedback, by tenant and
    topic; only ``tenant``'s when given."""
    stats: dict[tuple[str, str], TopicStats] = {}

    def of(tenant: str, topic: str | None) -> TopicStats:
        name = topic or UNKNOWN_TOPIC
        return stats.setdefault((tenant, name), TopicStats(name))

    in_window = issued_cards.c.issued_on >= since if since else true()
    topic = issued_cards.c.topic
    joined = feedback.outerjoin(
        issued_cards,
        (feedback.c.card_uuid == issued_cards.c.card_uuid) & (feedback.c.tenant == issued_cards.c.tenant),
    )
    feedback_in_window = (
        ((issued_cards.c.card_uuid.is_not(None)) & in_window)
        | ((issued_cards.c.card_uuid.is_(None)) & (feedback.c.received_on >= since))
        if since
        else true()
    )
    issued_of: ColumnElement[bool] = issued_cards.c.tenant == tenant if tenant is not None else true()
    feedback_of: ColumnElement[bool] = feedback.c.tenant == tenant if tenant is not None else true()
    by_tenant = feedback.c.tenant
    with database.reading(database.durable) as connection:
        issued = (
            select(issued_cards.c.tenant, topic, issued_cards.c.silent, func.count())
            .where(in_window, issued_of)
            .group_by(issued_cards.c.tenant, topic, issued_cards.c.silent)
        )
        for owner, name, silent, count in cast(
            "Iterable[tuple[str, str | None, bool, int]]", connection.execute(issued)
        ):
            setattr(of(owner, name), "silent" if silent else "issued", count)
        outcomes = (
            select(by_tenant, topic, feedback.c.outcome, func.count(feedback.c.card_uuid.distinct()))
            .select_from(joined)
            .where(feedback_in_window, feedback_of)
            .group_by(by_tenant, topic, feedback.c.outcome)
        )
        for owner, name, outcome, count in cast(
            "Iterable[tuple[str, str | None, str, int]]", connection.execute(outcomes)
        ):
            setattr(of(owner, name), outcome, count)
        reasons = (
            select(by_tenant, topic, feedback.c.override_system, feedback.c.override_code, func.count())
            .select_from(joined)
            .where(feedback_in_window, feedback_of, feedback.c.outcome == "overridden")
            .group_by(by_tenant, topic, feedback.c.override_system, feedback.c.override_code)
        )
        counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for owner, name, system, code, count in cast(
            "Iterable[tuple[str, str | None, str | None, str | None, int]]",
            connection.execute(reasons),
        ):
            label = _reason_label(system, code)
            bucket = counts[owner, name or UNKNOWN_TOPIC]
            bucket[label] = bucket.get(label, 0) + count
    for key, by_reason in counts.items():
        stats[key].override_reasons = dict(sorted(by_reason.items()))
    return _by_tenant(stats)


def recommendation_report(
    database: Database, since: date | None = None, tenant: str | None = None
) -> Report:
    """Recommendations held by cards issued on or after ``since`` (all when None), and their
    feedback, by tenant; only ``tenant``'s when given."""
    stats: dict[tuple[str, str], TopicStats] = {}

    def of(owner: str, recommendation: str) -> TopicStats:
        return stats.setdefault((owner, recommendation), TopicStats(recommendation))

    held = issued_recommendations
    cards_in_window = select(
        held.c.card_uuid, held.c.recommendation, held.c.suggestion_uuid,
        issued_cards.c.tenant, issued_cards.c.silent,
    ).join(issued_cards, issued_cards.c.card_uuid == held.c.card_uuid)
    if since:
        cards_in_window = cards_in_window.where(issued_cards.c.issued_on >= since)
    if tenant is not None:
        cards_in_window = cards_in_window.where(issued_cards.c.tenant == tenant)
    rows = cards_in_window.subquery()
    with database.reading(database.durable) as connection:
        holding: dict[str, set[str]] = defaultdict(set)  # card -> its recommendations
        owner_of: dict[str, str] = {}  # card -> its tenant
        carries: dict[str, str] = {}  # suggestion -> the recommendation it carries out
        for card_uuid, recommendation, suggestion_uuid, owner, silent in cast(
            "Iterable[tuple[str, str, str, str, bool]]", connection.execute(select(rows))
        ):
            owner_of[card_uuid] = owner
            if suggestion_uuid:
                carries[suggestion_uuid] = recommendation
            else:
                holding[card_uuid].add(recommendation)
                counted = of(owner, recommendation)
                if silent:
                    counted.silent += 1
                else:
                    counted.issued += 1
        items = cast(
            "Iterable[tuple[str, str, str, str | None, str | None, str | None]]",
            connection.execute(
                select(feedback.c.card_uuid, feedback.c.tenant, feedback.c.outcome,
                       feedback.c.accepted_suggestions, feedback.c.override_system,
                       feedback.c.override_code)
                .where(feedback.c.card_uuid.in_(
                    select(rows.c.card_uuid).where(rows.c.suggestion_uuid == "")
                ))
            ),
        )
        accepted: set[tuple[str, str]] = set()
        overridden: set[tuple[str, str]] = set()
        reasons: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for card_uuid, sender, outcome, suggestions, system, code in items:
            if sender != owner_of[card_uuid]:
                continue  # another tenant's feedback on this card counts for nothing
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
                    bucket = reasons[owner_of[card_uuid], r]
                    bucket[label] = bucket.get(label, 0) + 1
    for card_uuid, recommendation in accepted:
        of(owner_of[card_uuid], recommendation).accepted += 1
    for card_uuid, recommendation in overridden:
        of(owner_of[card_uuid], recommendation).overridden += 1
    for (owner, recommendation), by_reason in reasons.items():
        of(owner, recommendation).override_reasons = dict(sorted(by_reason.items()))
    return _by_tenant(stats)


def _by_tenant(stats: dict[tuple[str, str], TopicStats]) -> Report:
    report: Report = {}
    for (owner, _), row in sorted(stats.items(), key=lambda kv: (kv[0][0], *_topic_order(kv[1]))):
        report.setdefault(owner, []).append(row)
    return report


def _topic_order(row: TopicStats) -> tuple[bool, str]:
    return row.topic == UNKNOWN_TOPIC, row.topic


def tenant_label(tenant: str) -> str:
    return BEFORE_TENANTS_LABEL if tenant == BEFORE_TENANTS else tenant


def _reason_label(system: str | None, code: str | None) -> str:
    """Our own codes by name; a client's other code system is kept apart with its URL."""
    if code is None:
        return NO_REASON
    return code if system == OVERRIDE_SYSTEM else f"{system or '?'}|{code}"


def format_report(report: Report, since: date | None, by: str = "card topic") -> str:
    """Plain-text tables for a terminal, one per tenant; ``silent``: would have fired."""
    window = f"cards issued since {since.isoformat()}" if since else "all cards on record"
    column = by.split()[-1]
    lines = [f"AIMSS CDS feedback by {by}, per tenant ({window})"]
    for tenant, rows in report.items():
        lines += [
            "",
            f"tenant {tenant_label(tenant)}",
            (
                f"{column:<28} {'issued':>7} {'silent':>7} {'accepted':>9} {'overridden':>11} "
                f"{'accept%':>8} {'override%':>10}  override reasons"
            ),
        ]
        for row in rows:
            reasons = ", ".join(f"{code} {n}" for code, n in row.override_reasons.items()) or "-"
            lines.append(
                f"{row.topic:<28} {row.issued:>7} {row.silent:>7} {row.accepted:>9} "
                f"{row.overridden:>11} {_percent(row.acceptance_rate):>8} "
                f"{_percent(row.override_rate):>10}  {reasons}"
            )
    if not report:
        lines += ["", "(no cards issued and no feedback received)"]
    return "\n".join(lines)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"
