"""Cards the service issued, and the topics a clinician quieted for a patient.

Feedback names only the card's uuid; the topic and patient come from the record made when the
card was sent, and only feedback of the tenant that was sent the card is linked to it, so one
tenant can never quiet another's cards. A snooze is an override, with a snoozing reason from the AIMSS override-reasons
CodeSystem, of a card issued for this patient, received fewer than ``days`` days ago. Whichever
of the feedback and the issued record arrives second links the two (``link_overrides``), so
their order does not matter, and reasons and ``days`` are read at each call, so a changed
configuration applies at once.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, select
from starlette.concurrency import run_in_threadpool

from cds_service.hooks.protocol import RECOMMENDATIONS_EXTENSION, SUGGESTION_EXTENSION, Card
from cds_service.knowledge.loader import OVERRIDE_SYSTEM
from cds_service.knowledge.rules_config import SnoozeRules

from .database import Database, insert_ignoring_conflicts
from .faults import StoreError, StoreFault
from .inline import InlineSqlite
from .schema import (
    feedback,
    issued_cards,
    issued_recommendations,
    order_card_drafts,
    patient_overrides,
)

log = logging.getLogger(__name__)


IssuedRow = dict[str, Any]


def issued_rows(
    service_id: str,
    cards: Sequence[Card],
    patient_key: str,
    issued_on: date,
    *,
    tenant: str,
    silent: bool = False,
) -> list[IssuedRow]:
    """The ``issued_cards`` rows of one hook call's cards (those with a topic); ``silent``:
    computed but not returned (the tenant's rollout mode)."""
    return [
        {
            "card_uuid": card.uuid,
            "service_id": service_id,
            "tenant": tenant,
            "silent": silent,
            "topic": card.source.topic.code,
            "indicator": card.indicator,
            "patient_key": patient_key,
            "issued_on": issued_on,
        }
        for card in cards
        if card.source.topic is not None
    ]


def draft_key(identity: str) -> str:
    """A draft's stored identity: a hash, so no order id or drug is kept in the clear."""
    return hashlib.sha256(identity.encode()).hexdigest()


def order_card_rows(
    hook: str,
    drafted: Sequence[tuple[Card, str]],
    patient_key: str,
    issued_at: datetime,
    *,
    tenant: str,
) -> list[IssuedRow]:
    """The ``order_card_drafts`` rows of one order-time call: each card with its draft."""
    return [
        {
            "card_uuid": card.uuid,
            "tenant": tenant,
            "hook": hook,
            "patient_key": patient_key,
            "topic": card.source.topic.code,
            "draft_key": draft_key(draft),
            "issued_at": issued_at,
        }
        for card, draft in drafted
        if card.source.topic is not None
    ]


def recommendation_rows(cards: Sequence[Card]) -> list[IssuedRow]:
    """The ``issued_recommendations`` rows of one call's cards: each recommendation a card holds
    (a grouped card's list, else its own topic) and each suggestion's recommendation."""
    rows: list[IssuedRow] = []
    for card in cards:
        if card.source.topic is None:
            continue
        held = (card.extension or {}).get(RECOMMENDATIONS_EXTENSION) or [{"code": card.source.topic.code}]
        rows += [{"card_uuid": card.uuid, "recommendation": c["code"], "suggestion_uuid": ""} for c in held]
        for suggestion in card.suggestions or []:
            of = (suggestion.extension or {}).get(SUGGESTION_EXTENSION, {}).get("code", card.source.topic.code)
            rows.append({"card_uuid": card.uuid, "recommendation": of, "suggestion_uuid": suggestion.uuid})
    return rows


class CardLedger:
    def __init__(self, database: Database, inline: InlineSqlite | None = None) -> None:
        self._db = database
        self._inline = inline

    async def snoozed(
        self, patient_key: str, today: date, rules: SnoozeRules, *, tenant: str
    ) -> frozenset[str]:
        """``snoozed_topics``, read on the event loop when SQLite answers at once (``inline``),
        else in a thread."""
        if rules.days <= 0 or not rules.reasons:
            return frozenset()
        if self._inline is not None:
            since = (today - timedelta(days=rules.days)).isoformat()  # SQLite keeps dates so
            parameters = (tenant, patient_key, *rules.reasons, since)
            rows = self._inline.run(_snooze_sql(len(rules.reasons)), parameters, write=False)
            if rows is not None:
                return frozenset(topic for (topic,) in rows)
        return await run_in_threadpool(
            functools.partial(self.snoozed_topics, patient_key, today, rules, tenant=tenant)
        )

    def record_rows(
        self,
        rows: list[IssuedRow],
        recommendations: Sequence[IssuedRow] = (),
        draft_rows: Sequence[IssuedRow] = (),
    ) -> None:
        """Store issued cards (with the recommendations they held, and the drafts of order-time
        cards), of one call or of many, in one transaction. A failure costs only the snooze and
        the no-repeat of these cards, never a hook call: it is logged, not raised."""
        if not rows:
            return
        try:
            with self._db.writing(self._db.fast) as connection:
                insert = self._db.insert_ignoring_conflicts(issued_cards, "card_uuid")
                connection.execute(insert, rows)
                if recommendations:
                    keys = ("card_uuid", "recommendation", "suggestion_uuid")
                    held = self._db.insert_ignoring_conflicts(issued_recommendations, *keys)
                    connection.execute(held, list(recommendations))
                if draft_rows:
                    drafts = self._db.insert_ignoring_conflicts(order_card_drafts, "card_uuid")
                    connection.execute(drafts, list(draft_rows))
                link_overrides(self._db, connection, [row["card_uuid"] for row in rows])
        except (StoreFault, StoreError) as error:
            log.error("issued cards not recorded: %s", error)

    def overridden_at_selection(
        self, patient_key: str, since: datetime, *, tenant: str
    ) -> frozenset[tuple[str, str]]:
        """(topic, draft key) of this patient's order-select cards that the tenant's clinicians
        overrode with a reason (any reason, any code system) since ``since``. A store fault
        answers none: the call repeats the safety card rather than fail."""
        query = (
            select(order_card_drafts.c.topic, order_card_drafts.c.draft_key)
            .distinct()
            .join(
                feedback,
                (feedback.c.card_uuid == order_card_drafts.c.card_uuid)
                & (feedback.c.tenant == order_card_drafts.c.tenant),
            )
            .where(
                order_card_drafts.c.tenant == tenant,
                order_card_drafts.c.patient_key == patient_key,
                order_card_drafts.c.hook == "order-select",
                feedback.c.outcome == "overridden",
                feedback.c.override_code.is_not(None),
                feedback.c.received_at >= since,
            )
        )
        try:
            with self._db.reading(self._db.fast) as connection:
                return frozenset((row.topic, row.draft_key) for row in connection.execute(query))
        except StoreFault as fault:
            log.error("order-select overrides not read, safety cards repeated: %s", fault)
            return frozenset()

    def snoozed_topics(
        self, patient_key: str, today: date, rules: SnoozeRules, *, tenant: str
    ) -> frozenset[str]:
        """Topics the tenant's clinicians quieted for this patient. A store fault quiets nothing:
        the call shows cards that may have been snoozed rather than fail."""
        if rules.days <= 0 or not rules.reasons:
            return frozenset()
        query = (
            select(patient_overrides.c.topic)
            .distinct()
            .where(
                patient_overrides.c.tenant == tenant,
                patient_overrides.c.patient_key == patient_key,
                patient_overrides.c.override_code.in_(rules.reasons),
                patient_overrides.c.received_on > today - timedelta(days=rules.days),
            )
        )
        try:
            with self._db.reading(self._db.fast) as connection:
                return frozenset(connection.execute(query).scalars())
        except StoreFault as fault:
            log.error("snoozes not read, no card quieted: %s", fault)
            return frozenset()


@functools.cache
def _snooze_sql(reasons: int) -> str:
    """The query of ``snoozed_topics`` in SQLite's words, for ``reasons`` override codes."""
    table, c = patient_overrides.name, patient_overrides.c
    return (
        f"SELECT DISTINCT {c.topic.name} FROM {table} WHERE {c.tenant.name} = ? "
        f"AND {c.patient_key.name} = ? AND {c.override_code.name} IN ({', '.join('?' * reasons)}) "
        f"AND {c.received_on.name} > ?"
    )


def link_overrides(database: Database, connection: Connection, card_uuids: list[str]) -> None:
    """Copy the overrides of these cards that can now be tied to a patient into
    ``patient_overrides``: called after storing feedback and after recording issued cards,
    in the same transaction, so whichever arrives second makes the link (duplicates ignored)."""
    connection.execute(_link_statement(database.dialect), {"card_uuids": card_uuids})


@functools.cache
def _link_statement(dialect: str) -> Insert:
    """Built once per dialect: this runs after every hook call, and building costs more than running."""
    overrides = (
        select(
            feedback.c.id, issued_cards.c.tenant, issued_cards.c.patient_key, issued_cards.c.topic,
            feedback.c.override_code, feedback.c.received_on,
        )
        .join(
            issued_cards,
            (issued_cards.c.card_uuid == feedback.c.card_uuid)
            & (issued_cards.c.service_id == feedback.c.service_id)
            & (issued_cards.c.tenant == feedback.c.tenant),
        )
        .where(  # a WHERE is needed: SQLite's upsert after a SELECT with a join is ambiguous without it
            feedback.c.card_uuid.in_(bindparam("card_uuids", expanding=True)),
            feedback.c.outcome == "overridden",
            feedback.c.override_system == OVERRIDE_SYSTEM,
            feedback.c.override_code.is_not(None),
        )
    )
    columns = ["feedback_id", "tenant", "patient_key", "topic", "override_code", "received_on"]
    return insert_ignoring_conflicts(dialect, patient_overrides, "feedback_id").from_select(columns, overrides)
