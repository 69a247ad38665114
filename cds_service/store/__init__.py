"""The shared state of one deployment (feedback, issued cards, seen JWT ids) in one database.

Every worker and replica opens the same database, so replay checks and snoozes hold across
all of them. Calls are synchronous: the HTTP edge runs them in a thread.
"""

from __future__ import annotations

from .database import Database
from .faults import StoreError, StoreFault
from .feedback import FeedbackLog, FeedbackRefused
from .issued import CardLedger
from .patients import PatientKeys
from .replay import DatabaseReplayGuard


class Store:
    def __init__(self, database_url: str, patient_hash_key: str | None = None) -> None:
        self.database = Database(database_url)
        self.feedback = FeedbackLog(self.database)
        self.cards = CardLedger(self.database)
        self.patients = PatientKeys.for_database(self.database, patient_hash_key)
        self.replay_guard = DatabaseReplayGuard(self.database)

    def ping(self) -> None:
        """Reachable, writable, still the same file: else ``StoreFault``."""
        self.database.check()

    def close(self) -> None:
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
