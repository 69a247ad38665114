"""Acceptance and override rates per tenant and card topic, from the issued cards and their feedback.

A card counts once as accepted or overridden however many feedback items it got. Feedback for
a card the service has no record of (issued before recording began, or by another deployment)
is shown under ``UNKNOWN_TOPIC`` so that nothing received is hidden. Cards a tenant's rollout
mode kept silent are counted apart (``silent``): what would have fired, never shown, so never
accepted or overridden.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, select, true

from cds_service.knowledge.loader import OVERRIDE_SYSTEM

from .database import Database
from .schema import feedback, issued_cards
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
        for owner, name, silent, count in connection.execute(issued):
            setattr(of(owner, name), "silent" if silent else "issued", count)
        outcomes = (
            select(by_tenant, topic, feedback.c.outcome, func.count(feedback.c.card_uuid.distinct()))
            .select_from(joined)
            .where(feedback_in_window, feedback_of)
            .group_by(by_tenant, topic, feedback.c.outcome)
        )
        for owner, name, outcome, count in connection.execute(outcomes):
            setattr(of(owner, name), outcome, count)
        reasons = (
            select(by_tenant, topic, feedback.c.override_system, feedback.c.override_code, func.count())
            .select_from(joined)
            .where(feedback_in_window, feedback_of, feedback.c.outcome == "overridden")
            .group_by(by_tenant, topic, feedback.c.override_system, feedback.c.override_code)
        )
        counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for owner, name, system, code, count in connection.execute(reasons):
            label = _reason_label(system, code)
            bucket = counts[owner, name or UNKNOWN_TOPIC]
            bucket[label] = bucket.get(label, 0) + count
    for key, by_reason in counts.items():
        stats[key].override_reasons = dict(sorted(by_reason.items()))
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


def format_report(report: Report, since: date | None) -> str:
    """Plain-text tables for a terminal, one per tenant; ``silent``: would have fired."""
    window = f"cards issued since {since.isoformat()}" if since else "all cards on record"
    lines = [f"AIMSS CDS feedback by tenant and topic ({window})"]
    for tenant, rows in report.items():
        lines += [
            "",
            f"tenant {tenant_label(tenant)}",
            (
                f"{'topic':<28} {'issued':>7} {'silent':>7} {'accepted':>9} {'overridden':>11} "
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
