"""Statements short enough to run on the event loop: SQLite only, and only when they cannot wait.

Every authenticated call inserts its JWT id, and most calls read the patient's snoozes. Through
SQLAlchemy in a worker thread each cost 150-200 µs plus a thread hop (and a hop waits for the
GIL while the loop computes another call's facts). On a local SQLite file the same statement
is a few tens of microseconds. So this worker keeps one plain ``sqlite3`` connection that
hardly waits: its busy timeout is ``BUSY_TIMEOUT``, and it does not queue for the worker's writer
lock. When the database or the lock stays busy, or anything fails, ``run`` answers ``None`` and
the caller tries again later or takes its usual path in a thread, which waits its turn and
reports faults as the store always has.
A statement either ran whole (autocommit) or not at all, so falling back never doubles a write.

The guards of ``sqlite_file`` apply as to every statement: ``-shm`` and the file's identity are
checked before, and the identity again after a write. PostgreSQL gets no inline path: its
statements cross a network, which the event loop must not wait on.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .database import Database
from .faults import StoreFault

BUSY_TIMEOUT = 0.001
"""Seconds SQLite may wait, blocking the event loop, when another connection holds a lock. Not
zero: with none, SQLite's housekeeping of the write-ahead log gave up at every collision, the
log was never restarted and grew to ~47 MB in 20 s of two workers at 16 clients (~5 MB with 1 ms)."""


class InlineSqlite:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._connection: sqlite3.Connection | None = None

    @property
    def available(self) -> bool:
        """SQLite on a file (an in-memory database is private to its connection)."""
        return self._db.file is not None

    def run(self, sql: str, parameters: tuple[Any, ...], *, write: bool) -> list[Any] | None:
        """The rows of ``sql``, or ``None`` when it could not run at once (run it in a thread)."""
        file = self._db.file
        if file is None:
            return None
        if write and not self._db.try_writer():
            return None
        try:
            file.before_statement()
            rows = self._connect().execute(sql, parameters).fetchall()
            if write:
                file.check_same_file()
            return rows
        except (sqlite3.Error, StoreFault):
            return None
        finally:
            if write:
                self._db.release_writer()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            assert self._db.file is not None
            connection = sqlite3.connect(self._db.file.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            connection.execute("PRAGMA mmap_size=0")
            connection.execute("PRAGMA synchronous=NORMAL")  # as the ``fast`` engine
            self._connection = connection
        return self._connection
