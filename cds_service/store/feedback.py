"""Durable feedback: every item committed (fsync) before the HTTP answer, duplicates ignored.

Calls are synchronous; callers run them in a thread. Free-text ``userComment`` is not stored
(it may hold patient data); only that one was given.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from cds_service.hooks.protocol import FeedbackItem

from .database import Database
from .issued import link_overrides
from .schema import feedback


class FeedbackLog:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, service_id: str, items: Iterable[FeedbackItem], received_on: date) -> int:
        """Store every item in one transaction; a duplicate of a stored item is ignored."""
        received_at = datetime.now(UTC)
        rows = [_row(service_id, item, received_at, received_on) for item in items]
        statement = self._db.insert_ignoring_conflicts(feedback, "dedup_key").returning(
            feedback.c.id  # rows come back only for items that were new
        )
        with self._db.writing(self._db.durable) as connection:
            stored = len(connection.execute(statement, rows).all())
            overridden = [row["card_uuid"] for row in rows if row["outcome"] == "overridden"]
            if overridden:
                link_overrides(self._db, connection, overridden)
            return stored

    def count(self) -> int:
        with self._db.durable.connect() as connection:
            return connection.execute(select(func.count()).select_from(feedback)).scalar_one()

    def rows(self) -> list[dict[str, Any]]:
        with self._db.durable.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(select(feedback))]


def _row(
    service_id: str, item: FeedbackItem, received_at: datetime, received_on: date
) -> dict[str, Any]:
    accepted = sorted(s.id for s in item.acceptedSuggestions or [])
    reason = item.overrideReason.reason if item.overrideReason else None
    row: dict[str, Any] = {
        "service_id": service_id,
        "card_uuid": item.card,
        "outcome": item.outcome,
        "accepted_suggestions": json.dumps(accepted) if accepted else None,
        "override_system": reason.system if reason else None,
        "override_code": reason.code if reason else None,
        "override_has_comment": bool(item.overrideReason and item.overrideReason.userComment),
        "outcome_timestamp": item.outcomeTimestamp,
    }
    row["dedup_key"] = hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()
    return row | {"received_at": received_at, "received_on": received_on}
