"""What leaves the store when the database says no, with none of the values that were sent.

- ``StoreFault``: the database or its file cannot do what it must (unreachable, disk full,
  read-only, no longer the file the service opened). The HTTP edge answers 503 with an
  OperationOutcome. A write that raised it was not acknowledged, so nothing answered 200 is
  lost; the client may send it again.
- ``StoreError``: the database refused a statement for a reason that is the service's own (a
  bug): a 500.

Neither carries the driver's full text or chains the driver's error: tracebacks and logs print
both, and PostgreSQL's detail quotes the refused row ("Failing row contains ..."), SQLAlchemy
the parameters unless the engine hides them (``database`` does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    InternalError,
    OperationalError,
    SQLAlchemyError,
)

DATABASE_FAULTS = (OperationalError, InterfaceError, InternalError)
"""SQLAlchemy's errors that come from the database or its file, not from the statement."""


class StoreFault(Exception):
    """The message names the fault (a file, a condition), never a value that was stored."""


class StoreError(Exception):
    """A statement refused: the message is the error's type and SQLSTATE only."""


@contextlib.contextmanager
def without_values() -> Iterator[None]:
    """Turn the database's errors into ``StoreFault``/``StoreError``, their values dropped."""
    try:
        yield
    except DATABASE_FAULTS as error:
        raise StoreFault(f"database error: {_kind(error)}: {_condition(error)}") from None
    except SQLAlchemyError as error:
        raise StoreError(f"database refused a statement: {_kind(error)}") from None


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
