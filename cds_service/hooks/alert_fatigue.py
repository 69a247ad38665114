"""Alert fatigue at the edge: drop the findings a clinician quieted for this patient.

The rules stay pure and always say what they see; these filters, between the rules and the
cards, remove topics quieted by a recent "not now" or "already addressed" override, and at
signing the safety cards already overridden at order-select for the same draft
(``store.issued``). With grouped cards the override names the card's topic (``aimss-plan``):
every finding that would go on that card is quieted, so the card stays away. Safety first: a
critical finding is never dropped, nor ``data-incomplete``, which says what could not be read on
this call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime, timedelta

from starlette.concurrency import run_in_threadpool

from cds_service.clinical.findings import Finding
from cds_service.knowledge.rules_config import OrderSignRules, SnoozeRules
from cds_service.store import CardLedger
from cds_service.store.issued import draft_key

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


async def without_overridden_at_selection(
    findings: list[Finding],
    ledger: CardLedger,
    patient_key: str,
    now: datetime,
    rules: OrderSignRules,
    tenant: str,
) -> list[Finding]:
    """order-sign's findings minus those whose card the clinician already overrode, with a
    reason, at order-select for the same draft within the ordering session. The safety check
    was seen and answered; repeating it at signing is the alert fatigue that gets alerts ignored."""
    drafted = [f for f in findings if f.draft is not None]
    if not drafted or rules.no_repeat_hours <= 0:
        return findings
    since = now - timedelta(hours=rules.no_repeat_hours)
    answered = await run_in_threadpool(
        functools.partial(ledger.overridden_at_selection, patient_key, since, tenant=tenant)
    )
    return [f for f in findings if f.draft is None or (f.topic, draft_key(f.draft)) not in answered]
