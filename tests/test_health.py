"""Probes: /health (alive), /ready (knowledge loaded, store reachable), both without a JWT."""

from __future__ import annotations

import shutil
from pathlib import Path


def test_health_and_ready_answer_without_a_jwt(make_client):
    secured = make_client(auth_disabled=False)
    assert secured.get("/health").json() == {"status": "ok"}
    ready = secured.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "knowledge": "loaded", "store": "reachable"}
    assert secured.get("/metrics").status_code == 200


def test_ready_is_503_with_an_operation_outcome_when_the_store_is_down(make_client, tmp_path: Path):
    database = tmp_path / "store.db"
    client = make_client(database_url=f"sqlite:///{database}")
    assert client.get("/ready").status_code == 200
    # Take the database away for real: close the pool, put a folder where the file was.
    client.app.state.runtime.store.close()
    for leftover in tmp_path.glob("store.db*"):
        leftover.unlink()
    database.mkdir()
    response = client.get("/ready")
    assert response.status_code == 503
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "transient"
    assert client.get("/health").status_code == 200, "liveness does not depend on the store"
    shutil.rmtree(database)
    assert client.get("/ready").status_code == 503, "a new, empty file there is not the store"
    assert make_client(database_url=f"sqlite:///{database}").get("/ready").status_code == 200, (
        "a restart takes the file that is there"
    )


def test_ready_is_503_once_the_database_file_is_deleted(make_client, tmp_path: Path):
    """SQLite goes on writing into the unlinked file: feedback answered 200 and gone at restart."""
    client = make_client(database_url=f"sqlite:///{tmp_path}/store.db")
    assert client.get("/ready").status_code == 200
    (tmp_path / "store.db").unlink()
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["issue"][0]["code"] == "transient"
