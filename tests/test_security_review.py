"""One test per finding of the hospital security review (issue 15), each failing on the code the
review tested. Findings tested elsewhere: a JWK's ``alg`` (test_auth), 404 and non-Bundle
searches (test_fhir_client, test_fhir_faults), SIGBUS, deleted and full stores at the store level
(test_store_faults), cross-tenant snoozes and the rollout modes end to end (test_tenants)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from cds_service.settings import Settings
from cds_service.store import FeedbackLog, Store
from cds_service.web.app import create_app
from tests.conftest import ROOT, TODAY, _free_port
from tests.faulty_fhir import FaultyFhir, faulty_fhir
from tests.helpers import patient_view
from tests.signing import ISSUER, ISSUER_B, bearer, issuer_entry, token, write_issuers_file
from tests.test_conformance import ANASTROZOLE, full_prefetch

VIEW = "/cds-services/aimss-patient-view"
FEEDBACK = VIEW + "/feedback"


@pytest.fixture
def secured(make_client: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    return make_client(auth_disabled=False, trusted_issuers_file=write_issuers_file(tmp_path))


# --- audience from the Host header (medium-high) ------------------------------------------------

def test_a_token_for_another_deployment_is_refused_whatever_the_host_header(secured):
    other = "http://other-deployment.example.org"
    spoofed = {"Authorization": f"Bearer {token('/cds-services', base=other)}",
               "Host": "other-deployment.example.org"}
    assert secured.get("/cds-services", headers=spoofed).status_code == 401
    assert secured.get("/cds-services", headers=bearer("/cds-services")).status_code == 200


def test_jwt_checks_without_a_url_to_check_against_refuse_to_start(tmp_path):
    settings = Settings(trusted_issuers_file=write_issuers_file(tmp_path),
                        database_url=f"sqlite:///{tmp_path}/aimss.db")
    with pytest.raises(ValueError, match="AIMSS_PUBLIC_BASE_URL"):
        create_app(settings)


def test_serve_on_a_wildcard_address_without_a_public_url_refuses_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMSS_")}
    env |= {"AIMSS_TRUSTED_ISSUERS_FILE": str(write_issuers_file(tmp_path)),
            "AIMSS_DATABASE_URL": f"sqlite:///{tmp_path}/aimss.db"}
    try:
        run = subprocess.run(
            [sys.executable, "-m", "cds_service", "serve", "--host", "0.0.0.0", "--port", str(_free_port())],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the service started on 0.0.0.0 with no URL to check JWT audiences against")
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert "0.0.0.0" in line and "AIMSS_PUBLIC_BASE_URL" in line


# --- any FHIR server (medium) ---------------------------------------------------------------------

def test_credentials_in_fhir_server_are_refused(client):
    body = patient_view(fhirServer="http://user:secret@127.0.0.1:9/fhir")
    response = client.post(VIEW, json=body)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "secret" not in response.text


@pytest.fixture(scope="module")
def fhir() -> Iterator[FaultyFhir]:
    with faulty_fhir() as running:
        yield running


def test_a_tenant_never_makes_the_service_contact_a_server_outside_its_list(
    make_client, tmp_path, fhir, caplog
):
    """Issuer A lists its FHIR server; B lists none (any). A naming another server: not contacted."""
    listed = "https://fhir.ehr-a.example.org/r4"
    issuers = write_issuers_file(
        tmp_path, issuer_entry(ISSUER, fhir_servers=[listed]), issuer_entry(ISSUER_B)
    )
    with caplog.at_level(logging.INFO, logger="aimss_cds"):
        client = make_client(auth_disabled=False, trusted_issuers_file=issuers)
    assert f"issuer {ISSUER_B} may name any FHIR server" in caplog.text
    assert f"issuer {ISSUER} may name only: {listed}" in caplog.text
    elsewhere = fhir.base("http_503", "Nothing")  # answers every search normally
    before = len(fhir.requests)
    refused = client.post(VIEW, json=patient_view("pat-a", fhirServer=elsewhere), headers=bearer(VIEW))
    assert refused.status_code == 412
    assert len(fhir.requests) == before, "the server outside A's list was never contacted"
    assert "not in the fhir_servers of issuer" in caplog.text
    allowed = client.post(VIEW, json=patient_view("pat-b", fhirServer=elsewhere),
                          headers=bearer(VIEW, iss=ISSUER_B))
    assert allowed.status_code == 200 and len(fhir.requests) > before


def test_a_412_names_the_keys_not_why_they_failed(client, fhir):
    """A reason per key (unreachable, timeout, http_500) made the service a port scanner."""
    body = patient_view("pat-scan", fhirServer=fhir.base("http_500", "MedicationStatement"))
    response = client.post(VIEW, json=body)
    assert response.status_code == 412
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert "medicationStatements" in diagnostics and "http_500" not in diagnostics


# --- body before token, header size and time (medium) ---------------------------------------------

@contextlib.contextmanager
def served(settings: Settings, **config: Any) -> Iterator[int]:
    """The app under a real uvicorn server in a thread, on ``settings.listen_url``'s port."""
    assert settings.listen_url is not None
    port = int(settings.listen_url.rsplit(":", 1)[1])
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings, clock=lambda: TODAY), host="127.0.0.1", port=port,
        log_config=None, log_level="warning", access_log=False, **config,
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def secured_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(**{
        "trusted_issuers_file": write_issuers_file(tmp_path),
        "database_url": f"sqlite:///{tmp_path}/aimss.db",
        "listen_url": f"http://127.0.0.1:{_free_port()}",
        **overrides,
    })


def raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` and ``body`` (not the rest of the body the head may promise); read what
    comes back until the server closes or goes quiet for 10 s (then: a hang)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"no answer, connection left open; got {received[:80]!r}")
    return received


def test_a_bad_token_is_refused_before_a_50_mb_body_is_read(tmp_path):
    """The review: the body was read and parsed before the 401 (6 in parallel: 612 MB)."""
    with served(secured_settings(tmp_path)) as port:
        head = (
            f"POST {VIEW} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer not.a.jwt\r\n"
            "Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
        ).encode()
        answer = raw_request(port, head, b"{" + b" " * 65535)  # 64 KiB of the 50 MB promised
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"cache-control: no-store" in answer.lower()


def test_a_body_over_the_limit_is_413_before_it_is_read(tmp_path):
    settings = secured_settings(tmp_path, max_body_bytes=1_000_000)
    with served(settings) as port:
        authorization = f"Bearer {token(VIEW, base=settings.listen_url or '')}"
        head = (
            f"POST {VIEW} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\n"
            "Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
        ).encode()
        answer = raw_request(port, head, b"{")
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"resourceType":"OperationOutcome"' in answer


def test_a_streamed_body_over_the_limit_is_413(make_client):
    client = make_client(max_body_bytes=500)
    body = json.dumps(patient_view(prefetch=full_prefetch(ANASTROZOLE))).encode()
    assert len(body) > 500

    def chunks() -> Iterator[bytes]:  # no Content-Length: only counting can stop it
        yield from (body[i:i + 100] for i in range(0, len(body), 100))

    response = client.post(VIEW, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["issue"][0]["code"] == "too-costly"


@pytest.fixture
def bounded_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """``serve``'s protocol, with a half-second header timeout (its limits are read per process)."""
    from cds_service.web import server

    monkeypatch.setenv("AIMSS_HEADER_TIMEOUT", "0.5")
    monkeypatch.setenv("AIMSS_MAX_HEADER_BYTES", "16384")
    server._limits.cache_clear()
    with served(secured_settings(tmp_path), http=server.BoundedHttpToolsProtocol) as port:
        yield port
    server._limits.cache_clear()


def test_a_huge_authorization_header_is_431_not_read_whole(bounded_server):
    """The review sent a 20 MB Authorization header: it was read whole."""
    head = f"GET /cds-services HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {'a' * 100_000}"
    answer = raw_request(bounded_server, head.encode())  # never completed: refused on its size
    assert answer.startswith(b"HTTP/1.1 431")


def test_headers_sent_too_slowly_lose_the_connection(bounded_server):
    """No header-read timeout: a client sending a header now and then held a connection forever."""
    assert raw_request(bounded_server, b"GET /cds-services HTTP/1.1\r\nHost: 127.0.0.1\r\n") == b""


# --- PostgreSQL errors (medium) -------------------------------------------------------------------

ITEM = {"card": "card-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T13:29:01Z",
        "overrideReason": {"reason": {"system": "http://example.org/r", "code": "not-now"}}}


@pytest.mark.parametrize("bad", [{"card": "x" * 101}, {"card": "nul\x00card"},
                                 {"overrideReason": {"reason": {"system": "s", "code": "c" * 101}}}])
def test_feedback_over_the_stored_columns_is_400_and_nothing_is_lost(make_client, database_url, bad):
    client = make_client(database_url=database_url)
    response = client.post(FEEDBACK, json={"feedback": [ITEM, ITEM | bad]})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert FeedbackLog(Store(database_url).database).rows() == [], "the whole batch refused, unstored"
    assert client.post(FEEDBACK, json={"feedback": [ITEM]}).status_code == 200


# --- store faults (medium) ------------------------------------------------------------------------

def test_feedback_into_a_deleted_database_is_503_not_a_lost_200(make_client, tmp_path):
    client = make_client(database_url=f"sqlite:///{tmp_path}/gone.db")
    (tmp_path / "gone.db").unlink()
    response = client.post(FEEDBACK, json={"feedback": [ITEM]})
    assert response.status_code == 503
    assert response.json()["issue"][0]["code"] == "transient"


def test_a_full_disk_is_503_for_feedback_and_ready_while_hook_calls_answer(tmp_path):
    """The review: every hook call 500 (the JWT id could not be written), /ready 200."""
    script = textwrap.dedent(f"""
        import resource
        from fastapi.testclient import TestClient
        from cds_service.settings import Settings
        from cds_service.web.app import create_app
        from tests.conftest import TODAY
        from tests.helpers import patient_view
        from tests.signing import bearer, write_issuers_file
        from tests.test_conformance import ANASTROZOLE, full_prefetch
        from pathlib import Path

        settings = Settings(trusted_issuers_file=write_issuers_file(Path("{tmp_path}")),
                            database_url="sqlite:///{tmp_path}/aimss.db", listen_url="http://testserver")
        with TestClient(create_app(settings, clock=lambda: TODAY)) as client:
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))  # no file grows
            view = "/cds-services/aimss-patient-view"
            hook = client.post(view, json=patient_view(prefetch=full_prefetch(ANASTROZOLE)), headers=bearer(view))
            item = {{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T13:29:01Z"}}
            feedback = client.post(view + "/feedback", json={{"feedback": [item]}}, headers=bearer(view + "/feedback"))
            print(hook.status_code, len(hook.json().get("cards", [])) > 0, feedback.status_code,
                  client.get("/ready").status_code, flush=True)
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["200", "True", "503", "503"]


# --- big charts (low-medium) ----------------------------------------------------------------------

def pain_scores(count: int) -> dict[str, Any]:
    score = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/pat-1"},
             "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
             "effectiveDateTime": "2026-11-01", "valueQuantity": {"value": 4}}
    return {"resourceType": "Bundle", "entry": [{"resource": score | {"id": f"p{i}"}} for i in range(count)]}


def test_a_key_over_the_resource_limit_is_unavailable_not_read(make_client):
    client = make_client(max_resources_per_key=1000)
    prefetch = full_prefetch(ANASTROZOLE) | {"painObservations": pain_scores(1001)}
    response = client.post(VIEW, json=patient_view(prefetch=prefetch))
    assert response.status_code == 200
    cards = response.json()["cards"]  # each says which data could not be read
    assert cards and all("pain and BPI scores" in card["detail"] for card in cards)


def test_health_answers_while_a_big_chart_is_evaluated(make_client, monkeypatch):
    """Facts and rules ran on the event loop: 100k pain scores held /health for 9.9 s. A chart
    above ``OFF_LOOP_RESOURCES`` is now evaluated in a thread (a small one, ~1 ms, still on the
    event loop)."""
    from cds_service.hooks import pipeline

    evaluating, health_answered = threading.Event(), threading.Event()
    seen_during_evaluation: list[bool] = []
    read_facts = pipeline.read_facts

    def slow_read_facts(*args: Any) -> Any:
        evaluating.set()
        # On the event loop this wait would hold /health back until it gave up.
        seen_during_evaluation.append(health_answered.wait(timeout=10))
        return read_facts(*args)

    monkeypatch.setattr(pipeline, "read_facts", slow_read_facts)
    client = make_client()
    big = full_prefetch(ANASTROZOLE) | {"painObservations": pain_scores(pipeline.OFF_LOOP_RESOURCES + 1)}
    hook = threading.Thread(target=client.post, args=(VIEW,), kwargs={"json": patient_view(prefetch=big)})
    hook.start()
    assert evaluating.wait(timeout=10)
    assert client.get("/health").status_code == 200
    health_answered.set()
    hook.join(timeout=20)
    assert seen_during_evaluation == [True], "/health waited for the evaluation"


# --- smaller --------------------------------------------------------------------------------------

def test_every_answer_says_no_store_and_nosniff(secured):
    answers = [
        secured.get("/health"),
        secured.get("/cds-services"),  # 401
        secured.get("/nowhere"),  # 404
        secured.post(VIEW, json={}, headers=bearer(VIEW)),  # 400
        secured.options("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org",
                                                  "Access-Control-Request-Method": "GET"}),
    ]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.status_code
        assert answer.headers["x-content-type-options"] == "nosniff", answer.status_code


def test_docs_and_openapi_are_off_unless_switched_on(make_client):
    default = make_client()
    assert default.get("/docs").status_code == 404
    assert default.get("/openapi.json").status_code == 404
    assert make_client(docs_enabled=True).get("/openapi.json").status_code == 200


def test_cors_origins_are_configurable_and_default_to_any(make_client):
    preflight = {"Access-Control-Request-Method": "POST"}
    anyone = make_client().options("/cds-services", headers=preflight | {"Origin": "https://x.example"})
    assert anyone.headers["access-control-allow-origin"] == "*"
    only_ehr = make_client(cors_origins="https://ehr.example.org")
    refused = only_ehr.options("/cds-services", headers=preflight | {"Origin": "https://x.example"})
    assert "access-control-allow-origin" not in refused.headers
    allowed = only_ehr.options("/cds-services", headers=preflight | {"Origin": "https://ehr.example.org"})
    assert allowed.headers["access-control-allow-origin"] == "https://ehr.example.org"
