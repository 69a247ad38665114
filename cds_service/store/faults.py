"""What leaves the store when the database says no, with none of the values that were sent.

- ``StoreFault``: the database or its file cannot do what it must (unreachable, disk full,
  read-only, no longer the file the service opened). The HTTP edge answers 503 with an
  OperationOutcome. A write that raised it was not acknowledged, so nothing answered 200 is
  lost; the client may send it again.
- ``StoreError``: the database refused a statement for a reason that is the service's own (a
  bug, or tables missing from a database opened read-only): a 500.

Neither carries the driver's full text or chains the driver's error: tracebacks and logs print
both, and PostgreSQL's detail quotes the refused row ("Failing row contains ..."), SQLAlchemy
the parameters unless the engine hides them (``database`` does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
    SQLAlchemyError,
)

STATEMENT_ERRORS = (DataError, IntegrityError, ProgrammingError, NotSupportedError)
"""SQLAlchemy's errors that come from the statement or its values; any other is the database's
or its file's (unreachable, full, read-only, locked, "file is not a database")."""


class StoreFault(Exception):
    """The message names the fault (a file, a condition), never a value that was stored;
    ``condition`` is the fault alone ("database or disk is full"), for a one-line message."""

    def __init__(self, message: str, condition: str | None = None) -> None:
        super().__init__(message)
        self.condition = condition or message


class StoreError(Exception):
    """A statement refused: the error's type and SQLSTATE, and the driver's first line unless
    the statement's values may be in it (a ``DataError``: "invalid input syntax ...: "x"").
    ``condition`` is that line, for a one-line message."""

    def __init__(self, message: str, condition: str | None = None) -> None:
        super().__init__(message)
        self.condition = condition or message


@contextlib.contextmanager
def without_values() -> Iterator[None]:
    """Turn the database's errors into ``StoreFault``/``StoreError``, their values dropped."""
    try:
        yield
    except STATEMENT_ERRORS as error:
        if isinstance(error, DataError):
            raise StoreError(f"database refused a statement: {_kind(error)}") from None
        condition = _condition(error)  # "relation "x" does not exist"; the values are in DETAIL
        raise StoreError(f"database refused a statement: {_kind(error)}: {condition}", condition) from None
    except SQLAlchemyError as error:
        condition = _condition(error)
        raise StoreFault(f"database error: {_kind(error)}: {condition}", condition) from None


def _kind(error: SQLAlchemyError) -> str:
    orig = error.orig if isinstance(error, DBAPIError) else None
    sqlstate = getattr(orig, "sqlstate", None)
    name = type(orig).__name__ if orig is not None else type(error).__name__
    return f"{name} (SQLSTATE {sqlstate})" if sqlstate else name


def _condition(error: SQLAlchemyError) -> str:
    """The first line of a fault's message: "database or disk is full", "connection refused"."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    lines = str(orig).strip().splitlines()
    return lines[0][:200] if lines else "-"
