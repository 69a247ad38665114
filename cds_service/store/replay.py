"""The JWT replay guard of a whole deployment: every worker checks the same table of seen ids.

An atomic insert-or-ignore decides: of two workers racing on one ``jti`` exactly one inserts
the row, the other sees the conflict and rejects the token. Ids are stored as SHA-256 with the
time the token stops being acceptable, and expired rows are pruned about once a minute per
worker. The write goes through the ``fast`` engine (no fsync, see ``database``): it happens on
every authenticated call.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sqlalchemy import delete
from starlette.concurrency import run_in_threadpool

from .database import Database
from .schema import seen_jti

PRUNE_INTERVAL_SECONDS = 60.0


class DatabaseReplayGuard:
    """A ``web.auth.replay.ReplayGuard`` backed by the shared database."""

    def __init__(self, database: Database, now: Callable[[], float] = time.time) -> None:
        self._db = database
        self._now = now
        self._pruned_at = float("-inf")

    async def first_use(self, jti: str, expires_at: int) -> bool:
        return await run_in_threadpool(self.first_use_sync, jti, expires_at)

    def first_use_sync(self, jti: str, expires_at: int) -> bool:
        statement = (
            self._db.insert_ignoring_conflicts(seen_jti, "jti_hash")
            .values(jti_hash=hashlib.sha256(jti.encode()).hexdigest(), expires_at=expires_at)
            .returning(seen_jti.c.jti_hash)  # a row back only if this call inserted it
        )
        with self._db.writing(self._db.fast) as connection:
            first = connection.execute(statement).first() is not None
        now = self._now()
        if now - self._pruned_at >= PRUNE_INTERVAL_SECONDS:
            self._pruned_at = now
            with self._db.writing(self._db.fast) as connection:
                connection.execute(delete(seen_jti).where(seen_jti.c.expires_at < now))
        return first
