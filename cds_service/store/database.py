"""One deployment's database: SQLite (WAL) by default, PostgreSQL by URL, shared by all workers.

Two engines over the same database, because not every write deserves the same price:

- ``durable``: feedback and the patient-hash secret. SQLite ``synchronous=FULL`` (fsync on every
  commit); PostgreSQL's default synchronous commit. What was answered 200 survives any crash.
- ``fast``: seen JWT ids and issued cards, written on every authenticated call or hook.
  SQLite ``synchronous=NORMAL`` in WAL mode, PostgreSQL ``synchronous_commit=off``: a commit
  is in the WAL (OS page cache) before it returns, so a killed worker loses nothing; only an OS
  or database-server crash can lose the last few records. Skipping the fsync keeps these
  writes off the latency budget (DESIGN §7).

Every engine hides SQL parameters from its errors (``hide_parameters``): an error's text reaches
logs and tracebacks, and parameters are what was stored. A database fault (unreachable, full,
read-only, a file gone) leaves ``reading``/``writing`` as ``StoreFault``, any other refusal as
``StoreError``, neither with the database's text (``faults``); SQLite files are guarded as
``sqlite_file`` describes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event, make_url
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError

from .faults import StoreFault, without_values
from .migrate import upgrade
from .schema import store_probe
from .sqlite_file import SqliteFile

log = logging.getLogger(__name__)


def engine_url(database_url: str) -> str:
    """Plain ``postgresql://`` URLs use psycopg 3, the maintained driver."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url.removeprefix(prefix)
    return database_url


class Database:
    """The engines of the shared state; creates the tables on first use.

    ``read_only`` (``aimss-cds report``) creates nothing: a missing SQLite file is an error, not
    a new empty database, and no write can happen by mistake."""

    def __init__(self, database_url: str, *, read_only: bool = False) -> None:
        url = engine_url(database_url)
        self.file: SqliteFile | None = None
        if url.startswith("sqlite"):
            if not read_only:  # the report only reads: no file to guard, nothing to create
                self.file = _sqlite_file(url)
            else:  # mode=ro never creates the file; WAL is the writers' to set
                url = _sqlite_read_only(url)
            self.durable: Engine = create_engine(url, hide_parameters=True)
            self.fast: Engine = create_engine(url, hide_parameters=True)
            if not read_only:
                event.listen(self.durable, "connect", _sqlite_pragmas("FULL", self.file))
                event.listen(self.fast, "connect", _sqlite_pragmas("NORMAL", self.file))
        else:
            read_only_option = "-c default_transaction_read_only=on " if read_only else ""
            self.durable = create_engine(
                url,
                pool_pre_ping=True,
                hide_parameters=True,
                connect_args={"options": read_only_option},
            )
            self.fast = create_engine(
                url,
                pool_pre_ping=True,
                hide_parameters=True,
                connect_args={"options": read_only_option + "-c synchronous_commit=off"},
            )
        self.dialect: str = self.durable.dialect.name
        self._writer = threading.Lock()
        self._one_writer: contextlib.AbstractContextManager[Any] = (
            self._writer if self.dialect == "sqlite" else contextlib.nullcontext()
        )
        if self.file is not None:
            self.file.check_writable()
            for engine in (self.durable, self.fast):
                event.listen(engine, "before_cursor_execute", self.file.before_statement)
        if not read_only:
            with without_values():
                _create_tables(self.durable)
        if self.file is not None:
            self.file.remember()

    @contextlib.contextmanager
    def writing(self, engine: Engine) -> Iterator[Connection]:
        """A write transaction on ``engine`` (``durable`` or ``fast``), committed on exit.

        SQLite has a single writer, and a connection that finds it busy sleeps in growing steps
        (up to 100 ms) before trying again, so threads of one worker writing at once (a replay
        check per call) starved each other for seconds. They queue on a lock here instead and
        go as soon as the writer before them commits. PostgreSQL takes concurrent writers.
        After the commit the SQLite file is checked again: a write into a deleted file is lost.
        """
        with without_values(), self._one_writer, engine.begin() as connection:
            yield connection
        if self.file is not None:
            self.file.check_same_file()

    def try_writer(self) -> bool:
        """Take this worker's SQLite writer lock (see ``writing``) only if it is free."""
        return self._writer.acquire(blocking=False)

    def release_writer(self) -> None:
        self._writer.release()

    @contextlib.contextmanager
    def reading(self, engine: Engine) -> Iterator[Connection]:
        with without_values(), engine.connect() as connection:
            yield connection

    def insert_ignoring_conflicts(self, table: Table, *key: str) -> Insert:
        return insert_ignoring_conflicts(self.dialect, table, *key)

    def check(self) -> None:
        """Ready for work: both engines commit a write, and SQLite is still the file opened at
        start-up. Raises ``StoreFault`` otherwise."""
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        probe = insert(store_probe).values(name="ready", checked_at=int(time.time()))
        upsert = probe.on_conflict_do_update(
            index_elements=["name"], set_={"checked_at": probe.excluded.checked_at}
        )
        for engine in (self.durable, self.fast):
            with self.writing(engine) as connection:
                connection.execute(upsert)

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.restore_shm()
            except StoreFault as fault:
                log.error("closing the store: %s", fault)
        self.durable.dispose()
        self.fast.dispose()


def insert_ignoring_conflicts(dialect: str, table: Table, *key: str) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING``: atomic, so of two racing writers one wins."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing(index_elements=list(key))


def _sqlite_file(url: str) -> SqliteFile | None:
    """The database file of an SQLite URL; ``None`` for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return SqliteFile(Path(database).absolute())


def _create_tables(engine: Engine, attempts: int = 20) -> None:
    """Workers starting together on a fresh database race to create the tables and columns
    (and, on SQLite, to switch the file to WAL): a loser gets "already exists" or "locked", waits
    a moment and tries again, and then finds what the winner made. Without this a worker of
    ``serve --workers N`` could fail its start-up, and uvicorn then stops every worker."""
    for attempt in range(1, attempts + 1):
        try:
            upgrade(engine)
            return
        except DatabaseError:
            if attempt == attempts:
                raise
            time.sleep(0.02 * attempt)


def _sqlite_read_only(url: str) -> str:
    """SQLite's URI form of the same file, read-only."""
    path = make_url(url).database or ""
    return f"sqlite:///file:{quote(str(Path(path).absolute()))}?mode=ro&uri=true"


def _sqlite_pragmas(synchronous: str, file: SqliteFile | None) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        """WAL lets readers and one writer share the file across worker processes."""
        if file is not None:
            file.before_statement()  # the first PRAGMA reads the -shm another connection maps
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA mmap_size=0")  # the database file itself is read, never mapped
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    return on_connect
