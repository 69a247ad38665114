"""What a rule concludes: the contract between the rules and the cards.

A rule says *what* it found (topic, urgency, the data behind it, values for the wording, what
to order); the words a clinician reads come from ``card-text.toml`` (``knowledge.wording``), so
a site rewords a card without touching a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from cds_service.knowledge.wording import Indicator as Indicator
from cds_service.knowledge.wording import ParamValue

URGENCY: Mapping[Indicator, int] = {"critical": 0, "warning": 1, "info": 2}


def most_urgent(*indicators: Indicator) -> Indicator:
    return min(indicators, key=URGENCY.__getitem__)


@dataclass(frozen=True)
class Datum:
    """One value a rule read, listed on the card with its date: "pain 6/10 (2026-11-24)".
    ``since`` marks a start date ("anastrozole since 2026-03-30")."""

    what: str
    value: str = ""
    when: date | None = None
    since: bool = False


@dataclass(frozen=True)
class Order:
    """One suggestion: ActivityDefinitions (by id) created together, and drafts (by resource
    id) removed. Its label comes from the wording of the activities and the recommendation."""

    activities: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    recommended: bool = False


@dataclass(frozen=True)
class Finding:
    """A fired recommendation.

    ``params`` fill the placeholders of the topic's templates (names from ``[parameters]`` of
    card-text.toml); give a value only when it applies, since a line whose values are not all
    known is left out. ``notes`` name optional lines of ``[recommendations.<topic>.notes]``.
    """

    topic: str
    indicator: Indicator
    evidence: tuple[Datum, ...] = ()
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    orders: tuple[Order, ...] = ()
