"""Durable feedback: every item committed (fsync) before the HTTP answer, duplicates ignored.

Calls are synchronous; callers run them in a thread. Free-text ``userComment`` is not stored
(it may hold patient data); only that one was given. Each item is stored under the tenant that
sent it. An item that does not fit its columns (too long, a NUL byte: PostgreSQL refuses both,
and the whole transaction with them) is set aside before writing, so it cannot cost the batch's
valid items; ``FeedbackRefused`` then says which were not stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, Table, func, select

from cds_service.hooks.protocol import FeedbackItem

from .database import Database
from .issued import link_overrides
from .schema import feedback


class FeedbackRefused(Exception):
    """Items of a batch that were not stored; the batch's other items were."""

    def __init__(self, positions: dict[int, list[str]], stored: int) -> None:
        described = "; ".join(f"item {i}: {', '.join(why)}" for i, why in positions.items())
        super().__init__(f"feedback not stored: {described}")
        self.positions = positions
        self.stored = stored


class FeedbackLog:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(
        self,
        service_id: str,
        items: Iterable[FeedbackItem],
        received_on: date,
        *,
        tenant: str,
    ) -> int:
        """Store every item that fits in one transaction and return how many were new (a
        duplicate of a stored item is ignored); raise ``FeedbackRefused`` after storing them
        if some did not fit."""
        received_at = datetime.now(UTC)
        rows = [_row(tenant, service_id, item, received_at, received_on) for item in items]
        refused = {i: why for i, row in enumerate(rows) if (why := unfit_values(feedback, row))}
        stored = self._store([row for i, row in enumerate(rows) if i not in refused])
        if refused:
            raise FeedbackRefused(refused, stored)
        return stored

    def _store(self, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
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
        with self._db.reading(self._db.durable) as connection:
            return connection.execute(select(func.count()).select_from(feedback)).scalar_one()

    def rows(self) -> list[dict[str, Any]]:
        with self._db.reading(self._db.durable) as connection:
            return [dict(row._mapping) for row in connection.execute(select(feedback))]


def unfit_values(table: Table, row: dict[str, Any]) -> list[str]:
    """Why values of ``row`` cannot be stored in ``table`` as they are: names columns, never values."""
    problems = []
    for name, value in row.items():
        if not isinstance(value, str):
            continue
        column_type = table.c[name].type
        if "\x00" in value:
            problems.append(f"{name} holds a NUL character")
        elif isinstance(column_type, String) and column_type.length and len(value) > column_type.length:
            problems.append(f"{name} longer than {column_type.length} characters")
    return problems


def _row(
    tenant: str, service_id: str, item: FeedbackItem, received_at: datetime, received_on: date
) -> dict[str, Any]:
    accepted = sorted(s.id for s in item.acceptedSuggestions or [])
    reason = item.overrideReason.reason if item.overrideReason else None
    row: dict[str, Any] = {
        "tenant": tenant,
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
