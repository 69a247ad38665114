"""Shared fixtures: a pinned clock, the app with a throw-away database, a real FHIR server,
a real PostgreSQL server."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from cds_service.knowledge.loader import Knowledge, load_knowledge
from cds_service.settings import Settings, default_profiles_dir
from cds_service.store.database import engine_url
from cds_service.store.schema import metadata
from cds_service.web.app import create_app
from tests.signing import TESTSERVER

TODAY = date(2026, 11, 21)
ROOT = Path(__file__).resolve().parent.parent
SEKMET = Path(os.environ.get("SEKMET_BIN", ROOT / ".fhir" / "venv" / "bin" / "sekmet"))


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge(default_profiles_dir())


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Start the app with development settings plus overrides; every client is closed after."""
    clients: list[TestClient] = []

    def make(clock: Callable[[], date] = lambda: TODAY, **overrides: Any) -> TestClient:
        settings = Settings(
            **{
                "auth_disabled": True,
                "allow_open_fhir": True,
                "listen_url": TESTSERVER,  # the JWT audience, as `serve` sets it
                "database_url": f"sqlite:///{tmp_path}/aimss.db",
                **overrides,
            }
        )
        client = TestClient(create_app(settings, clock=clock))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real sekmet-fhir R4 server on a free port, installed by scripts/fhir-server.sh install."""
    if not SEKMET.exists():
        pytest.fail(f"{SEKMET} is missing: run scripts/fhir-server.sh install (scripts/test.sh does)")
    home = tmp_path_factory.mktemp("fhir")
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    (home / "settings.yaml").write_text(
        f"base_url: {base}\nhost: 127.0.0.1\nport: {port}\ndb_path: {home}/fhir.db\n"
        "simulator: {enabled: false}\nlog_inbound: false\n"
    )
    log = open(home / "server.log", "w")
    process = subprocess.Popen(
        [str(SEKMET), "serve", "-c", str(home / "settings.yaml")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        for _ in range(200):
            if process.poll() is not None:
                pytest.fail("FHIR server exited: " + (home / "server.log").read_text())
            try:
                httpx.get(base + "/metadata", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("FHIR server did not start in 20 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def post_transaction(base: str, bundle: dict[str, Any]) -> None:
    response = httpx.post(
        base, json=bundle, headers={"Content-Type": "application/fhir+json"}, timeout=30
    )
    assert response.status_code < 300, response.text[:500]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server from scripts/postgres.sh, for the whole session. Never skipped:
    the store must work on it, and CI runs as root where the script can install it."""
    env = os.environ | {"PG_PORT": str(_free_port())}
    script = ROOT / "scripts" / "postgres.sh"
    started = subprocess.run([str(script), "start"], env=env, capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(f"PostgreSQL did not start: {started.stdout[-2000:]} {started.stderr[-2000:]}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(script), "stop"], env=env, capture_output=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL, from empty tables."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/aimss.db"
    url = request.getfixturevalue("postgres_url")
    engine = sqlalchemy.create_engine(engine_url(url))
    metadata.drop_all(engine)
    engine.dispose()
    return url


# Tests that start servers, processes or a browser, or run long generated inputs: `pytest -m
# "not slow"` leaves them out, so the unit tests run alone in seconds.
SLOW_MODULES = frozenset({
    "test_benchmark", "test_browser", "test_fhir_faults", "test_fuzz", "test_integration",
    "test_processes",
})
SLOW_FIXTURES = frozenset({"fhir_server", "postgres_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgresql"
        fixtures = set(getattr(item, "fixturenames", ()))
        if module in SLOW_MODULES or fixtures & SLOW_FIXTURES or on_postgres:
            item.add_marker(pytest.mark.slow)
