"""/metrics: counters and histograms after real calls, bounded labels, no patient data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cds_service.metrics import key_reason
from tests.faulty_fhir import FaultyFhir, faulty_fhir
from tests.helpers import patient_view
from tests.signing import bearer, token, write_issuers_file
from tests.test_conformance import ANASTROZOLE, full_prefetch

PATIENT = "pat-METRICS-Q7Z4"
PV = "/cds-services/aimss-patient-view"
OVERRIDE = "http://aimss-cds.example.org/fhir/CodeSystem/aimss-override-reasons"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient | httpx.Client) -> tuple[str, Samples]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return response.text, samples


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture(scope="module")
def fhir() -> Iterator[FaultyFhir]:
    with faulty_fhir() as server:
        yield server


def test_hook_calls_count_latency_stages_keys_and_cards(client, fhir):
    _, before = scrape(client)
    complete = patient_view(PATIENT, prefetch=full_prefetch(ANASTROZOLE | {"subject": {"reference": f"Patient/{PATIENT}"}}))
    assert client.post(PV, json=complete).status_code == 200
    fallback = patient_view(PATIENT, fhirServer=fhir.base("http_503", "Observation"))
    assert client.post(PV, json=fallback).status_code == 200
    text, after = scrape(client)

    pv = {"service": "aimss-patient-view"}
    assert delta(before, after, "aimss_hook_duration_seconds_count", **pv, status="200") == 2
    for stage in ("gather", "facts", "rules", "cards"):
        assert delta(before, after, "aimss_stage_duration_seconds_count", **pv, stage=stage) == 2
    assert delta(before, after, "aimss_stage_duration_seconds_bucket", **pv, stage="gather", le="+Inf") == 2
    keys = "aimss_prefetch_keys_total"
    assert delta(before, after, keys, key="medicationStatements", source="prefetch", reason="") == 1
    assert delta(before, after, keys, key="medicationStatements", source="fhir", reason="") == 1
    assert delta(before, after, keys, key="dxaObservations", source="unavailable", reason="http_5xx") == 1
    assert delta(before, after, "aimss_cards_total", **pv, topic="bone-health") == 1
    assert delta(before, after, "aimss_cards_total", **pv, topic="data-incomplete") == 1
    assert PATIENT not in text and "127.0.0.1" not in text


def test_412_and_400_are_timed_by_status(client):
    _, before = scrape(client)
    no_meds = patient_view(PATIENT)  # no prefetch, no FHIR server
    assert client.post(PV, json=no_meds).status_code == 412
    assert client.post(PV, json={"hook": "patient-view"}).status_code == 400
    assert client.post("/cds-services/unknown", json=no_meds).status_code == 404
    _, after = scrape(client)
    count = "aimss_hook_duration_seconds_count"
    assert delta(before, after, count, service="aimss-patient-view", status="412") == 1
    assert delta(before, after, count, service="aimss-patient-view", status="400") == 1
    assert not any(dict(labels).get("service") == "unknown" for _, labels in after)
    keys = "aimss_prefetch_keys_total"
    assert delta(before, after, keys, key="medicationRequests", source="unavailable", reason="no_fhir_server") == 1


def test_auth_failures_count_by_reason(make_client, tmp_path):
    secured = make_client(auth_disabled=False, trusted_issuers_file=write_issuers_file(tmp_path))
    _, before = scrape(secured)
    body = patient_view(PATIENT, prefetch=full_prefetch(ANASTROZOLE))
    assert secured.post(PV, json=body).status_code == 401
    assert secured.post(PV, json=body, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    assert secured.post(PV, json=body, headers=bearer(PV, iss="https://stranger.example")).status_code == 401
    assert secured.post(PV, json=body, headers=bearer("/cds-services/other")).status_code == 401
    reused = {"Authorization": f"Bearer {token(PV, jti='once')}"}
    assert secured.post(PV, json=body, headers=reused).status_code == 200
    assert secured.post(PV, json=body, headers=reused).status_code == 401
    _, after = scrape(secured)
    for reason in ("missing", "malformed", "unknown_issuer", "audience", "replay"):
        assert delta(before, after, "aimss_auth_failures_total", reason=reason) == 1, reason
    count = "aimss_hook_duration_seconds_count"
    assert delta(before, after, count, service="aimss-patient-view", status="401") == 5
    assert delta(before, after, count, service="aimss-patient-view", status="200") == 1


def test_feedback_counts_outcomes_and_only_known_override_codes(client):
    _, before = scrape(client)
    stamp = "2026-11-21T10:00:00Z"
    items = [
        {"card": "c1", "outcome": "accepted", "acceptedSuggestions": [{"id": "s1"}], "outcomeTimestamp": stamp},
        {"card": "c2", "outcome": "overridden", "outcomeTimestamp": stamp,
         "overrideReason": {"reason": {"system": OVERRIDE, "code": "not-now"}, "userComment": PATIENT}},
        {"card": "c3", "outcome": "overridden", "outcomeTimestamp": stamp,
         "overrideReason": {"reason": {"system": OVERRIDE, "code": PATIENT}}},
        {"card": "c4", "outcome": "overridden", "outcomeTimestamp": stamp,
         "overrideReason": {"reason": {"system": "http://elsewhere.example", "code": "not-now"}}},
    ]
    assert client.post(PV + "/feedback", json={"feedback": items}).status_code == 200
    text, after = scrape(client)
    name = "aimss_feedback_items_total"
    pv = {"service": "aimss-patient-view"}
    assert delta(before, after, name, **pv, outcome="accepted", reason="none") == 1
    assert delta(before, after, name, **pv, outcome="overridden", reason="not-now") == 1
    assert delta(before, after, name, **pv, outcome="overridden", reason="other") == 2
    assert PATIENT not in text


@pytest.mark.parametrize(
    "reason, label",
    [("deadline", "deadline"), ("http_503", "http_5xx"), ("http_404", "http_4xx"),
     ("Patient/123", "other"), ("http_5033", "other")],
)
def test_key_reason_labels_are_bounded(reason, label):
    assert key_reason(reason) == label


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_metrics_add_up_across_workers(tmp_path: Path):
    """``serve --workers 2``: every scrape, whichever worker answers it, counts every call."""
    port = _free_port()
    env = os.environ | {
        "AIMSS_AUTH_DISABLED": "1",
        "AIMSS_DATABASE_URL": f"sqlite:///{tmp_path}/aimss.db",
        "AIMSS_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("service did not start")
        calls = 20
        body = patient_view(PATIENT, prefetch=full_prefetch(ANASTROZOLE))
        for _ in range(calls):  # a new connection each: the kernel spreads them over workers
            assert httpx.post(base + PV, json=body, timeout=10).status_code == 200
        for _ in range(6):
            with httpx.Client(base_url=base, timeout=10) as scraper:
                text, samples = scrape(scraper)
            key = ("aimss_hook_duration_seconds_count",
                   frozenset({"service": "aimss-patient-view", "status": "200"}.items()))
            assert samples.get(key) == calls
            assert PATIENT not in text
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
