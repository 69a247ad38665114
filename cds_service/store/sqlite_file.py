"""Guards of an SQLite database file that the service shares with other processes.

SQLite in WAL mode maps the ``-shm`` file into every connected process. Truncated under a
running worker, the next access to the mapping is SIGBUS: the worker dies without an answer.
A file deleted or replaced under the service keeps taking writes into the old, unlinked inode,
answered 200 and gone at the next start. So:

- at start-up, the database, ``-wal``, ``-shm`` and their folder must be writable by this
  process, or the start is refused naming the file (a read-only ``-shm`` would otherwise make
  every write fail, worker after worker);
- before every statement, ``-shm`` must still hold SQLite's first 32 KiB region and the
  database path must still be the file opened at start-up (two ``stat`` calls);
- after every commit the path is checked again, so a write that went into a deleted file is
  reported, not acknowledged.

A truncation in the microseconds between the check and the access can still raise SIGBUS; the
checks close the window an operator's mistake or a clean-up job would leave open. Closing the
last connection reads ``-shm`` too (SQLite checkpoints on close), so ``restore_shm`` gives the
file back its size first, zeroed: SQLite then rebuilds its index from the ``-wal`` as after any
crash. If the file cannot be written even that is impossible, and the worker may die on its way
out; it has answered every call by then.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .faults import StoreFault

SHM_REGION_BYTES = 32768
"""SQLite maps ``-shm`` in regions of this size, the first one as soon as a connection reads."""


@dataclass
class SqliteFile:
    path: Path
    identity: tuple[int, int] | None = None
    shm_size: int = 0
    """The largest ``-shm`` seen: what this process may have mapped."""

    @property
    def shm(self) -> Path:
        return Path(f"{self.path}-shm")

    def check_writable(self) -> None:
        """Refuse to start on files or a folder this process cannot write."""
        folder = self.path.parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StoreFault(f"the folder {folder} of the SQLite database is not writable by this process")
        for file in (self.path, Path(f"{self.path}-wal"), self.shm):
            try:
                os.close(os.open(file, os.O_RDWR))
            except FileNotFoundError:
                continue
            except OSError as error:
                raise StoreFault(
                    f"the SQLite file {file} is not writable by this process ({error.strerror}): "
                    "fix its owner or permissions"
                ) from None

    def remember(self) -> None:
        """The file opened at start-up: every later check compares the path with it."""
        self.identity = _identity(self.path)

    def check_same_file(self) -> None:
        if self.identity is not None and _identity(self.path) != self.identity:
            raise StoreFault(f"the SQLite database {self.path} was deleted or replaced since start-up")

    def check_shm(self) -> None:
        try:
            size = self.shm.stat().st_size
        except FileNotFoundError:
            raise StoreFault(f"the SQLite file {self.shm} was deleted under the service") from None
        if size < max(SHM_REGION_BYTES, self.shm_size):
            raise StoreFault(f"the SQLite file {self.shm} was truncated under the service")
        self.shm_size = size

    def restore_shm(self) -> None:
        """Before closing: a truncated ``-shm`` gets its size back, or the close reads past its end."""
        try:
            if self.shm.stat().st_size < self.shm_size:
                os.truncate(self.shm, self.shm_size)
        except OSError as error:
            raise StoreFault(f"the SQLite file {self.shm} is truncated and cannot be restored: "
                             f"{error.strerror}") from None

    def before_statement(self, *_: Any) -> None:
        """A ``before_cursor_execute`` listener: the checks that keep a statement off a bad file.

        Active from ``remember`` on: while the tables are made, a fresh file has no ``-shm`` yet."""
        if self.identity is not None:
            self.check_shm()
            self.check_same_file()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino
