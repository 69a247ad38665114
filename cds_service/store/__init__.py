"""The shared state of one deployment (feedback, issued cards, seen JWT ids) in one database.

Every worker and replica opens the same database, so replay checks and snoozes hold across
all of them. Calls are synchronous: the HTTP edge runs them in a thread, except the two on
every hook call (the JWT id, the snoozes), which on SQLite run on the event loop when they can
(``inline``).
"""

from __future__ import annotations

from .database import Database
from .faults import StoreError, StoreFault
from .feedback import FeedbackLog, FeedbackRefused
from .inline import InlineSqlite
from .issued import CardLedger
from .patients import PatientKeys
from .replay import DatabaseReplayGuard


class Store:
    def __init__(self, database_url: str, patient_hash_key: str | None = None) -> None:
        self.database = Database(database_url)
        self.inline = InlineSqlite(self.database)
        self.feedback = FeedbackLog(self.database)
        self.cards = CardLedger(self.database, self.inline)
        self.patients = PatientKeys.for_database(self.database, patient_hash_key)
        self.replay_guard = DatabaseReplayGuard(self.database, inline=self.inline)

    def ping(self) -> None:
        """Reachable, writable, still the same file: else ``StoreFault``."""
        self.database.check()

    def close(self) -> None:
        self.inline.close()
        self.database.close()


__all__ = [
    "CardLedger",
    "Database",
    "DatabaseReplayGuard",
    "FeedbackLog",
    "FeedbackRefused",
    "PatientKeys",
    "Store",
    "StoreError",
    "StoreFault",
]
