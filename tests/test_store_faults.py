"""Store faults: a file gone, truncated or unwritable, a full disk, values the database refuses.

Each is a ``StoreFault`` (503 at the edge) or a refused item, never a worker killed by SIGBUS, a
write acknowledged into a deleted file, or a batch lost to one bad item. Faults that can kill a
process run in a child process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from cds_service.store import FeedbackRefused, Store, StoreError, StoreFault
from cds_service.store.schema import feedback
from tests.test_store import DAY, DEV, item

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Mrs-Q-7Z4-secret-value"


def run_child(script: str, database: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter with ``store`` open on ``database`` and a feedback stored."""
    prelude = textwrap.dedent(f"""
        import os, resource, sys
        from cds_service.store import Store, StoreFault
        from cds_service.store.issued import issued_rows
        from tests.test_store import DAY, DEV, SNOOZE, card, item
        store = Store("sqlite:///{database}")
        store.feedback.add("aimss-patient-view", [item("before")], DAY, tenant=DEV)

        def attempt(name, call):
            try:
                print(name, "returned", call(), flush=True)
            except StoreFault as fault:
                print(name, "StoreFault", fault, flush=True)
    """)
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


def outcomes(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, f"child died (rc {result.returncode}): {result.stderr[-2000:]}"
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in result.stdout.splitlines()}


def test_a_truncated_shm_is_a_store_fault_not_sigbus(tmp_path: Path) -> None:
    """SQLite maps ``-shm``: truncated under a worker, the next access was SIGBUS (rc -7)."""
    result = run_child(f"""
        os.truncate("{tmp_path}/aimss.db-shm", 0)
        attempt("ping", store.ping)
        attempt("feedback", lambda: store.feedback.add("aimss-patient-view", [item("after")], DAY, tenant=DEV))
        attempt("snoozes", lambda: sorted(store.cards.snoozed_topics("pk", DAY, SNOOZE, tenant=DEV)))
        store.close()
        print("closed ok", flush=True)
    """, tmp_path / "aimss.db")
    seen = outcomes(result)
    assert seen["ping"].startswith("StoreFault") and "-shm was truncated" in seen["ping"]
    assert seen["feedback"].startswith("StoreFault")
    assert seen["snoozes"] == "returned []", "a hook call still answers, with nothing quieted"
    assert seen["closed"] == "ok"
    reopened = Store(f"sqlite:///{tmp_path}/aimss.db")
    assert [row["card_uuid"] for row in reopened.feedback.rows()] == ["before"]


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Not writable by this process: immutable for root (who ignores modes), read-only otherwise."""
    root = os.geteuid() == 0
    if root:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o444)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o644)


def test_a_read_only_shm_refuses_the_start_naming_the_file(tmp_path: Path) -> None:
    """Left by a process of another user: every write would fail, worker after worker."""
    Store(f"sqlite:///{tmp_path}/aimss.db").close()
    shm = tmp_path / "aimss.db-shm"
    shm.write_bytes(b"")
    with unwritable(shm), pytest.raises(StoreFault, match=r"aimss\.db-shm is not writable"):
        Store(f"sqlite:///{tmp_path}/aimss.db")


def test_serve_on_a_read_only_shm_refuses_in_one_line(tmp_path: Path) -> None:
    """The review: workers died (SIGBUS) and the service stayed down, saying nothing useful."""
    Store(f"sqlite:///{tmp_path}/aimss.db").close()
    shm = tmp_path / "aimss.db-shm"
    shm.write_bytes(b"")
    env = os.environ | {"AIMSS_DATABASE_URL": f"sqlite:///{tmp_path}/aimss.db", "AIMSS_AUTH_DISABLED": "1"}
    with unwritable(shm):
        run = subprocess.run(
            [sys.executable, "-m", "cds_service", "serve", "--port", "9"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("aimss-cds: cannot start:") and "aimss.db-shm is not writable" in line


def test_a_deleted_database_is_a_fault_not_a_lost_write(tmp_path: Path) -> None:
    """SQLite keeps writing into the unlinked file: answered 200, gone at the next start."""
    store = Store(f"sqlite:///{tmp_path}/aimss.db")
    store.feedback.add("aimss-patient-view", [item("kept")], DAY, tenant=DEV)
    (tmp_path / "aimss.db").unlink()
    with pytest.raises(StoreFault, match="deleted or replaced"):
        store.feedback.add("aimss-patient-view", [item("would-be-lost")], DAY, tenant=DEV)
    with pytest.raises(StoreFault, match="deleted or replaced"):
        store.ping()
    store.close()


def test_a_deleted_database_stays_a_fault_when_a_new_file_appears(tmp_path: Path) -> None:
    """A new, empty file at the path is not the store that holds the feedback."""
    store = Store(f"sqlite:///{tmp_path}/aimss.db")
    for leftover in tmp_path.glob("aimss.db*"):
        leftover.unlink()
    Store(f"sqlite:///{tmp_path}/aimss.db").close()  # another process makes a fresh database
    with pytest.raises(StoreFault):
        store.ping()
    store.close()


def test_a_full_disk_fails_writes_that_must_last_and_spares_the_rest(tmp_path: Path) -> None:
    """No file may grow (as on a full disk): feedback and readiness fail, reads still answer,
    issued-card records are best effort."""
    result = run_child("""
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        attempt("feedback", lambda: store.feedback.add("aimss-patient-view", [item("after")], DAY, tenant=DEV))
        attempt("ping", store.ping)
        attempt("record", lambda: store.cards.record_rows(
            issued_rows("aimss-patient-view", [card("u-1", "exercise")], "pk", DAY, tenant=DEV)))
        attempt("snoozes", lambda: sorted(store.cards.snoozed_topics("pk", DAY, SNOOZE, tenant=DEV)))
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        attempt("retry", lambda: store.feedback.add("aimss-patient-view", [item("after")], DAY, tenant=DEV))
        store.close()
    """, tmp_path / "aimss.db")
    seen = outcomes(result)
    assert seen["feedback"].startswith("StoreFault")
    assert seen["ping"].startswith("StoreFault")
    assert seen["record"] == "returned None"
    assert seen["snoozes"] == "returned []"
    assert seen["retry"] == "returned 1", "nothing was half-stored: the retry stores the item"


def test_a_bad_item_does_not_cost_the_batch_its_valid_items(database_url: str) -> None:
    """PostgreSQL refuses a value over its column's length or with a NUL, and the whole
    transaction with it. (The request models refuse such items first; this is the store's own
    guard, for items that reach it unvalidated.)"""
    store = Store(database_url)
    unvalidated = [item("ok").model_copy(update={"card": card}) for card in ("x" * 101, "nul\x00card")]
    batch = [item("ok-1"), *unvalidated, item("ok-2", "accepted")]
    with pytest.raises(FeedbackRefused) as refused:
        store.feedback.add("aimss-patient-view", batch, DAY, tenant=DEV)
    assert refused.value.positions == {
        1: ["card_uuid longer than 100 characters"], 2: ["card_uuid holds a NUL character"]
    }
    assert refused.value.stored == 2
    assert sorted(row["card_uuid"] for row in store.feedback.rows()) == ["ok-1", "ok-2"]


def test_database_errors_never_carry_the_values_sent(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An error's text reaches tracebacks and logs: SQLAlchemy put the parameters in it, and
    PostgreSQL quotes the failing row."""
    store = Store(database_url)
    caplog.set_level(logging.DEBUG)
    row = {"dedup_key": "k", "service_id": "s", "card_uuid": SECRET, "outcome": "accepted",
           "outcome_timestamp": "t", "received_at": None, "received_on": DAY}
    with pytest.raises(Exception) as error, store.database.writing(store.database.durable) as connection:
        connection.execute(insert(feedback), row)  # received_at NOT NULL: refused by both databases
    assert isinstance(error.value, StoreError)
    printed = "".join(traceback.format_exception(error.value))  # what a log of it would show
    assert SECRET not in printed
    assert SECRET not in caplog.text
