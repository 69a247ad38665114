"""Cards the service issued, and the topics a clinician quieted for a patient.

Feedback names only the card's uuid; the topic and patient come from the record made when the
card was sent. A snooze is not stored on its own: it is an override, with a snoozing reason
from the AIMSS override-reasons CodeSystem, of a card issued for this patient, received fewer
than ``days`` days ago. So the order in which feedback and the issued record arrive does not
matter, and a changed ``days`` applies at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ..knowledge import OVERRIDE_SYSTEM
from ..protocol import Card
from ..rules_config import SnoozeRules
from .database import Database
from .schema import feedback, issued_cards

log = logging.getLogger(__name__)


class CardLedger:
    def __init__(self, database: Database) -> None:
        self._db = database

    def record(
        self, service_id: str, cards: Sequence[Card], patient_key: str, issued_on: date
    ) -> None:
        """Remember who got which card. Runs after the answer was sent (a background task),
        so it adds no latency; a failure costs only the snooze of these cards, never the call.
        """
        rows = [
            {
                "card_uuid": card.uuid,
                "service_id": service_id,
                "topic": card.source.topic.code,
                "indicator": card.indicator,
                "patient_key": patient_key,
                "issued_on": issued_on,
            }
            for card in cards
            if card.source.topic is not None
        ]
        if not rows:
            return
        try:
            with self._db.fast.begin() as connection:
                insert = self._db.insert_ignoring_conflicts(issued_cards, "card_uuid")
                connection.execute(insert, rows)
        except SQLAlchemyError as error:
            log.error("issued cards not recorded: %s", type(error).__name__)

    def snoozed_topics(self, patient_key: str, today: date, rules: SnoozeRules) -> frozenset[str]:
        if rules.days <= 0 or not rules.reasons:
            return frozenset()
        query = (
            select(issued_cards.c.topic)
            .distinct()
            .join(
                feedback,
                (feedback.c.card_uuid == issued_cards.c.card_uuid)
                & (feedback.c.service_id == issued_cards.c.service_id),
            )
            .where(
                issued_cards.c.patient_key == patient_key,
                feedback.c.outcome == "overridden",
                feedback.c.override_system == OVERRIDE_SYSTEM,
                feedback.c.override_code.in_(rules.reasons),
                feedback.c.received_on > today - timedelta(days=rules.days),
            )
        )
        with self._db.fast.connect() as connection:
            return frozenset(connection.execute(query).scalars())
