"""Logs at DEBUG on every logger, through a real uvicorn server: no patient id, no access token,
no JWT (nor any of its parts) in any record; every line of a hook call carries its hookInstance."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cds_service import logs
from cds_service.settings import Settings
from cds_service.web.app import create_app
from tests.conftest import TODAY
from tests.faulty_fhir import FaultyFhir, anastrozole, faulty_fhir
from tests.helpers import draft_without_drug, order_select, patient_view
from tests.signing import token, write_issuers_file
from tests.test_conformance import WRONGLY_TYPED, full_prefetch

PATIENT = "pat-PHI-8K2QZ7"
ACCESS_TOKEN = "tok-SECRET-5XW9VJ3"
COMMENT = "Mrs PHI-COMMENT-Q4 declined"
PV = "/cds-services/aimss-patient-view"
OS = "/cds-services/aimss-order-select"
LOGGERS = ("", "aimss_cds", "cds_service", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx",
           "httpcore", "httpcore.connection", "httpcore.http11", "sqlalchemy", "sqlalchemy.engine",
           "sqlalchemy.engine.Engine", "sqlalchemy.pool", "asyncio", "hpack")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.formatter = logging.Formatter(logs.FORMAT)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self, record: logging.LogRecord) -> str:
        return " ".join([self.format(record), repr(record.args), repr(vars(record))])


@pytest.fixture
def debug_everywhere() -> Iterator[Capture]:
    """DEBUG on every logger an operator could turn up, as one would to debug a deployment."""
    capture = Capture()
    names = set(LOGGERS) | set(logging.root.manager.loggerDict)
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).propagate) for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
        logging.getLogger(name).propagate = True  # whatever another test's uvicorn configured
    logging.root.addHandler(capture)
    try:
        yield capture
    finally:
        logging.root.removeHandler(capture)
        for name, (level, propagate) in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).propagate = propagate


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The app under a real uvicorn server (its own loggers left to propagate), on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(
        trusted_issuers_file=write_issuers_file(tmp_path), allow_open_fhir=True,
        database_url=f"sqlite:///{tmp_path}/aimss.db", hook_deadline=0.5,
        listen_url=f"http://127.0.0.1:{port}",
    )
    config = uvicorn.Config(create_app(settings, clock=lambda: TODAY), host="127.0.0.1", port=port,
                            log_config=None, log_level="debug", access_log=True)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def fhir_authorization() -> dict[str, Any]:
    return {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
            "scope": "patient/*.read", "subject": "aimss-cds", "patient": PATIENT}


def test_no_patient_data_tokens_or_jwts_in_any_log_record(debug_everywhere, served):
    capture = debug_everywhere
    fhir: FaultyFhir
    jwts: list[str] = []
    calls: list[tuple[str, int, int, int]] = []  # hookInstance, status, first record, last record

    def call(path: str, body: Any, status: int, *, jwt: bool = True, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> None:
        sent = dict(headers or {})
        if jwt:
            jwts.append(token(path, base=served))
            sent["Authorization"] = f"Bearer {jwts[-1]}"
        first = len(capture.records)
        if raw is not None:
            response = httpx.post(served + path, content=raw, headers=sent | {"Content-Type": "application/json"})
        else:
            response = httpx.post(served + path, json=body, headers=sent, timeout=10)
        assert response.status_code == status, (path, response.text[:300])
        if isinstance(body, dict) and "hookInstance" in body:
            calls.append((body["hookInstance"], status, first, len(capture.records)))

    medication = anastrozole(PATIENT)
    with faulty_fhir() as fhir:
        # patient-view: complete prefetch; FHIR fallback with a failing key; 412 from FHIR faults
        call(PV, patient_view(PATIENT, hookInstance="hi-prefetch", prefetch=full_prefetch(medication)), 200)
        call(PV, patient_view(PATIENT, hookInstance="hi-fallback", fhirServer=fhir.base("http_503", "Observation"),
                              fhirAuthorization=fhir_authorization()), 200)
        for fault in ("silent", "bad_json", "truncated", "http_401"):
            call(PV, patient_view(PATIENT, hookInstance=f"hi-{fault}", fhirAuthorization=fhir_authorization(),
                                  fhirServer=fhir.base(fault, "MedicationStatement")), 412)
    call(PV, patient_view(PATIENT, hookInstance="hi-412"), 412)
    bad = full_prefetch(medication) | {"bpiResponses": {"resourceType": "Bundle", "entry": [
        {"resource": WRONGLY_TYPED["BPI item a number"] | {"subject": {"reference": f"Patient/{PATIENT}"}}}]}}
    call(PV, patient_view(PATIENT, hookInstance="hi-wrongly-typed", prefetch=bad), 200)
    # order-select: a drafted drug against the chart, and a draft without a drug
    tamoxifen = draft_without_drug(PATIENT) | {"medicationCodeableConcept": {"coding": [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "10324"}]}}
    call(OS, order_select(tamoxifen, PATIENT, hookInstance="hi-order", prefetch=full_prefetch(medication)), 200)
    call(OS, order_select(draft_without_drug(PATIENT), PATIENT, hookInstance="hi-no-drug"), 200)
    # feedback with a free-text comment
    call(PV + "/feedback", {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp":
          "2026-11-21T10:00:00Z", "overrideReason": {"userComment": COMMENT}}]}, 200)
    # 400s carrying patient data in the wrong places
    call(PV, None, 400, raw=b'{"hook": "patient-view", "context": {"patientId": "' + PATIENT.encode() + b'"')
    call(PV, {"hook": "patient-view", "hookInstance": "hi-400", "context": {"patientId": [PATIENT], "userId": PATIENT}}, 400)
    call(OS, patient_view(PATIENT, hookInstance="hi-wrong-hook"), 400)
    # 401s: no JWT, a garbage one, one for another audience, one from an unknown issuer
    body = patient_view(PATIENT, hookInstance="hi-401", prefetch=full_prefetch(medication))
    call(PV, body, 401, jwt=False)
    call(PV, body, 401, jwt=False, headers={"Authorization": f"Bearer {PATIENT}.{ACCESS_TOKEN}.x"})
    for wrong in (token(OS, base=served), token(PV, base=served, iss="https://stranger.example")):
        jwts.append(wrong)
        call(PV, body, 401, jwt=False, headers={"Authorization": f"Bearer {wrong}"})

    texts = [capture.text(record) for record in capture.records]
    assert texts, "nothing was logged: the test would prove nothing"
    assert any(r.name.startswith("uvicorn") for r in capture.records)
    secrets = [PATIENT, ACCESS_TOKEN, COMMENT, *jwts, *{part for jwt in jwts for part in jwt.split(".")}]
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"{secret[:12]}... logged: {text[:300]}"

    ours = ("aimss_cds", "cds_service")
    for hook_instance, status, first, last in calls:
        if hook_instance == "hi-400":
            continue  # the body is not a hook request: no hookInstance to trust
        if status == 401:
            continue  # the body of a refused call is never read: checked below
        lines = [r for r in capture.records[first:last] if r.name.startswith(ours)]
        assert lines, f"no log line for {hook_instance}"
        assert {r.hookInstance for r in lines} == {hook_instance}, hook_instance
        if status == 412:  # the hook line and the data line, both WARNING
            assert [r.levelno for r in lines] == [logging.WARNING] * 2, [r.getMessage() for r in lines]
            assert lines[0].getMessage().startswith("data unavailable (FHIR server ")

    # A refused call says why and which audience was expected; its body is never read.
    rejected = [r.getMessage() for r in capture.records if r.getMessage().startswith("JWT rejected")]
    expected_aud = f"expected_aud={served}{PV}"
    assert rejected == [
        f"JWT rejected: reason=missing {expected_aud}",
        f"JWT rejected: reason=malformed {expected_aud}",
        f'JWT rejected: reason=audience {expected_aud} (token aud "{served}{OS}")',
        f'JWT rejected: reason=unknown_issuer {expected_aud} (token iss "https://stranger.example")',
    ]
    # The body of a refused call is never read (the JWT is checked first): no hookInstance.
    assert {r.hookInstance for r in capture.records if r.getMessage().startswith("JWT rejected")} == {"-"}
    # The JSON format carries the same, one object a line, with nothing more to leak.
    json_lines = [logs.JsonFormatter().format(record) for record in capture.records]
    for line in json_lines:
        assert "\n" not in line
        for secret in secrets:
            assert secret not in line
