"""Alert fatigue at the edge: drop the findings a clinician quieted for this patient.

The rules stay pure and always say what they see; this filter, between the rules and the
cards, removes topics quieted by a recent "not now" or "already addressed" override
(``store.issued``). With grouped cards the override names the card's topic (``aimss-plan``):
every finding that would go on that card is quieted, so the card stays away. Safety first: a critical finding is never dropped, nor ``data-incomplete``,
which says what could not be read on this call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from cds_service.clinical.findings import Finding
from cds_service.knowledge.rules_config import SnoozeRules
from cds_service.store import CardLedger

NEVER_QUIETED_TOPICS = frozenset({"data-incomplete"})


def may_be_quieted(finding: Finding) -> bool:
    return finding.indicator != "critical" and finding.topic not in NEVER_QUIETED_TOPICS


def no_card(topic: str) -> str | None:
    """Ungrouped cards: each finding is its own card."""
    return None


async def without_quieted(
    findings: list[Finding],
    ledger: CardLedger,
    patient_key: str,
    today: date,
    rules: SnoozeRules,
    tenant: str,
    card_of: Callable[[str], str | None] = no_card,
) -> list[Finding]:
    """The findings minus the topics the tenant's clinicians quieted, or whose card
    (``card_of``) they quieted; no database read when nothing could be quieted."""
    if not any(may_be_quieted(finding) for finding in findings):
        return findings
    quieted = await ledger.snoozed(patient_key, today, rules, tenant=tenant)
    return [
        f for f in findings
        if not ((f.topic in quieted or card_of(f.topic) in quieted) and may_be_quieted(f))
    ]
