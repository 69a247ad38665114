"""What a rule concludes, before it becomes a CDS Hooks card."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cds_service.clinical.facts.model import DataSource

Indicator = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Order:
    """One suggestion: ActivityDefinitions to instantiate together, and drafts to remove."""

    label: str
    activities: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    recommended: bool = False


@dataclass(frozen=True)
class Finding:
    """A fired recommendation: the data that made it fire and what to do about it."""

    topic: str
    indicator: Indicator
    summary: str
    evidence: tuple[str, ...]
    advice: str
    orders: tuple[Order, ...] = ()
    unverified_codes: tuple[str, ...] = ()
    unreadable: frozenset[DataSource] = frozenset()
    """Data sources that could not be read; the card names them, in words, before the evidence."""
