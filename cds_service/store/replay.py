"""The JWT replay guard of a whole deployment: every worker checks the same table of seen ids.

An atomic insert-or-ignore decides: of two workers racing on one ``jti`` exactly one inserts
the row, the other sees the conflict and rejects the token. Ids are stored as SHA-256 with the
time the token stops being acceptable, and expired rows are pruned about once a minute per
worker. The write goes through the ``fast`` engine (no fsync, see ``database``): it happens on
every authenticated call. On SQLite it runs on the event loop when the database is free
(``inline``), the same atomic insert into the same table, so the check holds across workers
as before; otherwise, and on PostgreSQL, in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable

from sqlalchemy import delete
from starlette.concurrency import run_in_threadpool

from .database import Database
from .inline import InlineSqlite
from .schema import seen_jti

PRUNE_INTERVAL_SECONDS = 60.0
INLINE_RETRY_PAUSES = (0.0005, 0.001, 0.002, 0.004)
"""Seconds the event loop waits (serving other calls) before trying SQLite again when another
writer holds it, typically another worker's insert of tens of microseconds. After the last,
the thread path waits its turn in SQLite's busy handler, whose sleeps start at 1 ms and grow to
100 ms: with two workers writing on every call, those sleeps halved the calls per second."""


class DatabaseReplayGuard:
    """A ``web.auth.replay.ReplayGuard`` backed by the shared database."""

    def __init__(
        self,
        database: Database,
        now: Callable[[], float] = time.time,
        *,
        inline: InlineSqlite | None = None,
    ) -> None:
        self._db = database
        self._now = now
        self._pruned_at = float("-inf")
        self._inline = inline

    async def first_use(self, jti: str, expires_at: int) -> bool:
        if self._inline is not None and self._now() - self._pruned_at < PRUNE_INTERVAL_SECONDS:
            parameters = (_hash(jti), expires_at)
            for pause in INLINE_RETRY_PAUSES:
                rows = self._inline.run(_INLINE_INSERT, parameters, write=True)
                if rows is not None:
                    return bool(rows)
                await asyncio.sleep(pause)  # another writer holds SQLite: yield, try again soon
        return await run_in_threadpool(self.first_use_sync, jti, expires_at)

    def first_use_sync(self, jti: str, expires_at: int) -> bool:
        statement = (
            self._db.insert_ignoring_conflicts(seen_jti, "jti_hash")
            .values(jti_hash=_hash(jti), expires_at=expires_at)
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


def _hash(jti: str) -> str:
    return hashlib.sha256(jti.encode()).hexdigest()


_INLINE_INSERT = (
    f"INSERT INTO {seen_jti.name} ({seen_jti.c.jti_hash.name}, {seen_jti.c.expires_at.name}) "
    f"VALUES (?, ?) ON CONFLICT ({seen_jti.c.jti_hash.name}) DO NOTHING "
    f"RETURNING {seen_jti.c.jti_hash.name}"
)
"""The statement of ``first_use_sync`` in SQLite's words: a row back only if this call inserted it."""
