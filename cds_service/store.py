"""Durable feedback storage: SQLite (WAL) by default, PostgreSQL by URL.

Writes are synchronous and committed before the HTTP answer; callers run them in a thread.
Free-text ``userComment`` is not stored (it may hold patient data); only that one was given.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .protocol import FeedbackItem

metadata = MetaData()

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(64), nullable=False, unique=True),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(100), nullable=False, index=True),
    Column("outcome", String(20), nullable=False),
    Column("accepted_suggestions", Text),
    Column("override_system", Text),
    Column("override_code", String(100)),
    Column("override_has_comment", Boolean, nullable=False, default=False),
    Column("outcome_timestamp", String(40), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


def engine_url(database_url: str) -> str:
    """Plain ``postgresql://`` URLs use psycopg 3, the maintained driver."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url.removeprefix(prefix)
    return database_url


class FeedbackStore:
    def __init__(self, database_url: str) -> None:
        url = engine_url(database_url)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_durability)
        metadata.create_all(self.engine)

    def add(self, service_id: str, items: Iterable[FeedbackItem]) -> int:
        """Store every item in one transaction; a duplicate of a stored item is ignored."""
        received_at = datetime.now(UTC)
        rows = [_row(service_id, item, received_at) for item in items]
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(feedback).on_conflict_do_nothing(index_elements=["dedup_key"])
        with self.engine.begin() as connection:
            result = connection.execute(statement, rows)
        return result.rowcount

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(feedback)).scalar_one()

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(select(feedback))]

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


def _row(service_id: str, item: FeedbackItem, received_at: datetime) -> dict[str, Any]:
    accepted = sorted(s.id for s in item.acceptedSuggestions or [])
    reason = item.overrideReason.reason if item.overrideReason else None
    row = {
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
    row["received_at"] = received_at
    return row


def _sqlite_durability(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer share the file; FULL sync survives a killed process."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
