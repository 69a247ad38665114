"""The real service in worker processes: replay rejected across workers, nothing acknowledged lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cds_service.store import Database, FeedbackLog
from tests.conftest import _free_port
from tests.test_auth import EC_KEY, ISS, make_token, public_jwk

PUBLIC_BASE = "https://cds.example.org"
FEEDBACK = "/cds-services/aimss-patient-view/feedback"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen, str]]]:
    """Start ``aimss-cds serve`` on a free port, its output in ``server-<port>.log``; every
    process is killed at the end."""
    processes: list[subprocess.Popen] = []

    def start(env: dict[str, str], workers: int = 1) -> tuple[subprocess.Popen, str]:
        port = _free_port()
        log = open(tmp_path / f"server-{port}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", str(workers)],
            env=os.environ | {"AIMSS_LOG_LEVEL": "WARNING"} | env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            if process.poll() is not None:
                pytest.fail("server exited: " + (tmp_path / f"server-{port}.log").read_text())
            try:
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    return process, base
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail("server did not become ready in 30 s")

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_a_replayed_jti_is_rejected_by_the_other_worker(serve, database_url, tmp_path):
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps({"issuers": [{"iss": ISS, "jwks": {"keys": [public_jwk(EC_KEY, "ec-1")]}}]}))
    env = {
        "AIMSS_DATABASE_URL": database_url,
        "AIMSS_PUBLIC_BASE_URL": PUBLIC_BASE,
        "AIMSS_TRUSTED_ISSUERS_FILE": str(issuers),
    }
    (_, first), (_, second) = serve(env), serve(env)

    def token() -> dict[str, str]:
        now = int(time.time())
        jwt = make_token(aud=f"{PUBLIC_BASE}/cds-services", iat=now, exp=now + 300)
        return {"Authorization": f"Bearer {jwt}"}

    captured = token()
    assert httpx.get(first + "/cds-services", headers=captured).status_code == 200
    replayed = httpx.get(second + "/cds-services", headers=captured)
    assert (replayed.status_code, replayed.content) == (401, b"")
    assert httpx.get(first + "/cds-services", headers=captured).status_code == 401
    assert httpx.get(second + "/cds-services", headers=token()).status_code == 200


def feedback_item(card: str) -> dict:
    return {
        "card": card,
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-21T13:29:01Z",
        "overrideReason": {"reason": {"system": "http://example.org/r", "code": "not-now"}},
    }


def test_a_killed_server_loses_no_acknowledged_feedback(serve, database_url):
    env = {"AIMSS_DATABASE_URL": database_url, "AIMSS_AUTH_DISABLED": "1"}
    process, base = serve(env)
    acknowledged: list[str] = []
    lock = threading.Lock()

    def burst(worker: int) -> None:
        with httpx.Client(timeout=5) as client:
            for n in range(10_000):
                card = f"w{worker}-{n}"
                try:
                    response = client.post(base + FEEDBACK, json={"feedback": [feedback_item(card)]})
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(card)

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)  # mid-burst: requests are in flight
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 60

    _, restarted = serve(env)  # on the same database; a client resends what it is unsure of
    resend = [feedback_item(card) for card in acknowledged[:20]]
    assert httpx.post(restarted + FEEDBACK, json={"feedback": resend}).status_code == 200

    stored = [row["card_uuid"] for row in FeedbackLog(Database(database_url)).rows()]
    assert set(acknowledged) <= set(stored)
    assert len(stored) == len(set(stored)), "an item was stored twice"


def test_every_worker_logs_its_hook_calls_in_the_service_format(serve, tmp_path):
    """uvicorn starts workers as new processes: the log configuration must reach each of them."""
    env = {"AIMSS_AUTH_DISABLED": "1", "AIMSS_LOG_LEVEL": "INFO",
           "AIMSS_DATABASE_URL": f"sqlite:///{tmp_path}/aimss.db"}
    process, base = serve(env, workers=2)
    body = {"hook": "patient-view", "context": {"patientId": "p-1", "userId": "Practitioner/1"},
            "prefetch": {key: None for key in ("medicationStatements", "medicationRequests")}}
    for n in range(6):  # enough calls that both workers very likely answer some
        response = httpx.post(base + "/cds-services/aimss-patient-view",
                              json=body | {"hookInstance": f"hi-worker-{n}"}, timeout=10)
        assert response.status_code == 200
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    (log,) = tmp_path.glob("server-*.log")
    lines = log.read_text().splitlines()
    for n in range(6):
        assert any(f" INFO aimss_cds hookInstance=hi-worker-{n} hook service=aimss-patient-view status=200"
                   in line for line in lines), f"no hook line for hi-worker-{n}"
    assert not any("Logging error" in line for line in lines)
