"""The production topology on one machine: Debian's nginx terminating TLS with the shipped
configuration (deploy/nginx/) in front of two replicas, each ``aimss-cds serve --workers 2``,
sharing one PostgreSQL database; JWT checks on, the audience the external https URL.

Two more nginx instances, rendered from the same template, each send everything to one replica:
that is how a call is made to reach replica A, then replica B, deterministically.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sandbox.synthetic import sandbox_patients
from tests import signing
from tests.conftest import ROOT, _free_port, post_transaction
from tests.helpers import assert_valid_cards, card_holding, patient_view, suggestions_for, topics

pytestmark = pytest.mark.deploy

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = ROOT / "deploy" / "nginx" / "aimss-cds.conf.template"
COMPOSE = ROOT / "deploy" / "compose.yaml"
AIMSS_CDS = Path(sys.executable).with_name("aimss-cds")
HOOK = "/cds-services/aimss-patient-view"
PATIENTS = {p.id: p for p in sandbox_patients(dt.date.today())}  # the replicas' clock is real
SEEN = "aimss-no-dxa"  # on anastrozole, no DXA, no pain score: three cards, one accepted
SNOOZED = "aimss-recent-dxa"  # on letrozole, no baseline DXA: the bone-health card is snoozed
SNOOZED_CARD = "bone-health"
SNOOZED_TOPICS = {"bone-density-scan", "bone-protection"}  # what that card holds
OVERRIDE_SYSTEM = "http://aimss-cds.example.org/fhir/CodeSystem/aimss-override-reasons"
WAIT = 30.0  # seconds: the bound of every wait in this module


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


class Processes:
    """Started processes, each with its log; all stopped (then killed if need be) at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen[bytes], signal.Signals]] = []

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None,
              stop_with: signal.Signals = signal.SIGTERM) -> subprocess.Popen[bytes]:
        with open(self.folder / f"{name}.log", "wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append((process, stop_with))
        return process

    def ready(self, name: str, process: subprocess.Popen[bytes], port: int) -> bool:
        """The service's own readiness probe; a replica that exited fails the test with its log."""
        if process.poll() is not None:
            pytest.fail(f"{name} exited: {self.log(name)}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> None:
        for process, stop_with in self.started:
            if process.poll() is None:
                process.send_signal(stop_with)
        for process, _ in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        ), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / "tls.crt", folder / "tls.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    key_file.chmod(0o600)
    return cert, key_file


def start_nginx(processes: Processes, name: str, port: int, replicas: tuple[str, str],
                cert: Path, key: Path) -> None:
    """Debian's nginx running the shipped template, in a folder of its own, in the foreground."""
    home = processes.folder / name
    home.mkdir()
    (home / "aimss-cds.conf").write_text(Template(TEMPLATE.read_text()).safe_substitute(
        CDS_LISTEN=f"127.0.0.1:{port}", CDS_SERVER_NAME="localhost", CDS_TLS_CERT=str(cert),
        CDS_TLS_KEY=str(key), CDS_REPLICA_1=replicas[0], CDS_REPLICA_2=replicas[1],
    ))
    # As root, nginx's workers would drop to "nobody", who cannot enter pytest's 0700 folders.
    user = "user root;" if os.geteuid() == 0 else ""
    temp = " ".join(f"{kind}_temp_path {home}/{kind};" for kind in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (home / "nginx.conf").write_text(
        f"{user} worker_processes 1; daemon off; pid {home}/nginx.pid;\n"
        f"error_log {home}/error.log warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{ access_log {home}/access.log; {temp}\n include {home}/aimss-cds.conf; }}\n"
    )
    command = [NGINX, "-p", str(home), "-e", f"{home}/error.log", "-c", str(home / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], check=False, capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = processes.start(name, command, stop_with=signal.SIGQUIT)  # QUIT: graceful
    trust = ssl.create_default_context(cafile=cert)

    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"nginx {name} exited: {processes.log(name)}")
        try:
            response = httpx.get(f"https://127.0.0.1:{port}/health", verify=trust, timeout=2)
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(f"nginx {name} answering /health", listening)


@dataclass(frozen=True)
class Topology:
    external: str  # the URL the EHR calls: https through nginx to both replicas
    via_a: str  # https through nginx, to replica A only
    via_b: str  # https through nginx, to replica B only
    replica_a: str  # replica A's own http address (what the EHR must never see)
    tls: ssl.SSLContext  # trusts the test's own certificate, as clients trust the real one
    env: dict[str, str]  # the replicas' environment
    fhir: str  # the FHIR server the prefetch was read from (never called by the service)


@pytest.fixture(scope="module")
def shared_database(postgres_url: str) -> Iterator[str]:
    """A database of its own in the session's PostgreSQL server, dropped at the end."""
    name = f"topology_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, shared_database: str,
             fhir_server: str) -> Iterator[Topology]:
    if not Path(NGINX).exists():
        pytest.fail(f"{NGINX} is missing: scripts/debian-packages.sh nginx installs it "
                    "(scripts/test.sh does)")
    folder = tmp_path_factory.mktemp("topology")
    processes = Processes(folder)
    cert, key = self_signed_certificate(folder)
    names = ("nginx", "nginx-a", "nginx-b", "replica-a", "replica-b")
    ports = {name: _free_port() for name in names}
    external = f"https://127.0.0.1:{ports['nginx']}"
    env = os.environ | {
        "AIMSS_PUBLIC_BASE_URL": external,
        "AIMSS_TRUSTED_ISSUERS_FILE": str(signing.write_issuers_file(folder)),
        "AIMSS_DATABASE_URL": shared_database,
        "AIMSS_PATIENT_HASH_KEY": uuid.uuid4().hex,  # the same on every replica
        "AIMSS_LOG_LEVEL": "WARNING",
    }
    try:
        replicas = {name: processes.start(name, [
            str(AIMSS_CDS), "serve", "--host", "127.0.0.1", "--port", str(ports[name]),
            "--workers", "2",
        ], env) for name in ("replica-a", "replica-b")}
        for name, process in replicas.items():
            wait_for(f"{name} ready", lambda n=name, p=process: processes.ready(n, p, ports[n]))
        a, b = (f"127.0.0.1:{ports[name]}" for name in ("replica-a", "replica-b"))
        start_nginx(processes, "nginx", ports["nginx"], (a, b), cert, key)
        start_nginx(processes, "nginx-a", ports["nginx-a"], (a, a), cert, key)
        start_nginx(processes, "nginx-b", ports["nginx-b"], (b, b), cert, key)
        for patient in (SEEN, SNOOZED):
            post_transaction(fhir_server, PATIENTS[patient].transaction())
        yield Topology(
            external=external,
            via_a=f"https://127.0.0.1:{ports['nginx-a']}",
            via_b=f"https://127.0.0.1:{ports['nginx-b']}",
            replica_a=f"http://{a}",
            tls=ssl.create_default_context(cafile=cert),
            env=env,
            fhir=fhir_server,
        )
    finally:
        processes.stop_all()


def call(topology: Topology, base: str, method: str, path: str, *, aud_base: str | None = None,
         token: str | None = None, **kwargs: Any) -> httpx.Response:
    """One call with a fresh JWT for ``aud_base + path`` (the external URL unless told)."""
    jwt = token or signing.token(path, base=aud_base or topology.external)
    headers = {"Authorization": f"Bearer {jwt}", **kwargs.pop("headers", {})}
    return httpx.request(method, base + path, headers=headers, verify=topology.tls, timeout=10,
                         **kwargs)


def prefetch_like_an_ehr(topology: Topology, patient: str) -> dict[str, Any]:
    """Every prefetch template of the discovery filled from the FHIR server, as an EHR would."""
    services = call(topology, topology.external, "GET", "/cds-services").json()["services"]
    (service,) = [s for s in services if s["id"] == "aimss-patient-view"]
    prefetch = {}
    for key, template in service["prefetch"].items():
        query = template.replace("{{context.patientId}}", patient)
        bundle = httpx.get(f"{topology.fhir}/{query}", timeout=10).json()
        assert not [link for link in bundle.get("link", []) if link["relation"] == "next"]
        entries = [e for e in bundle.get("entry", []) if patient_of(e["resource"]) in ("", patient)]
        prefetch[key] = bundle | {"entry": entries, "total": len(entries)}
    return prefetch


def patient_of(resource: dict[str, Any]) -> str:
    """The FHIR server may ignore ?patient= on some types: an EHR sends one patient's data
    (and what it includes for it, such as Medications, which name no patient: "")."""
    reference = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return reference.removeprefix("Patient/")


@pytest.fixture(scope="module")
def hook_body(topology: Topology) -> Callable[[str], dict[str, Any]]:
    bodies = {patient: patient_view(patient, fhirServer=topology.fhir,
                                    prefetch=prefetch_like_an_ehr(topology, patient))
              for patient in (SEEN, SNOOZED)}
    return bodies.__getitem__


def cards_from(topology: Topology, base: str, body: dict[str, Any]) -> dict[str, Any]:
    response = call(topology, base, "POST", HOOK, json=body | {"hookInstance": str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    return response.json()


def feedback(topology: Topology, base: str, item: dict[str, Any]) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = call(topology, base, "POST", HOOK + "/feedback",
                    json={"feedback": [item | {"outcomeTimestamp": now}]})
    assert response.status_code == 200, response.text


def report(topology: Topology, by: str = "topics") -> dict[str, dict[str, Any]]:
    """``aimss-cds report --json`` on the shared database, by card topic or by recommendation
    (the one tenant's)."""
    done = subprocess.run([str(AIMSS_CDS), "report", "--json"], env=topology.env, check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    tenants = json.loads(done.stdout)["tenants"]
    assert {tenant["tenant"] for tenant in tenants} <= {signing.ISSUER}, "one EHR, one tenant"
    return {row["topic"]: row for tenant in tenants for row in tenant[by]}


def test_discovery_over_https_through_nginx(topology):
    response = call(topology, topology.external, "GET", "/cds-services")
    assert response.status_code == 200
    assert response.url.scheme == "https"
    services = {s["id"] for s in response.json()["services"]}
    assert services == {"aimss-patient-view", "aimss-order-select"}
    assert response.headers["strict-transport-security"] == "max-age=63072000"


def test_a_patient_view_with_prefetch_gets_its_cards_and_feedback_is_stored(topology, hook_body):
    body = cards_from(topology, topology.external, hook_body(SEEN))
    assert_valid_cards(body)
    assert topics(body) == PATIENTS[SEEN].expected
    card = card_holding(body["cards"], "bone-protection")
    accepted = {"card": card["uuid"], "outcome": "accepted",
                "acceptedSuggestions": [{"id": suggestions_for(card, "bone-protection")[0]["uuid"]}]}
    feedback(topology, topology.external, accepted)
    wait_for("the accepted suggestion in aimss-cds report",
             lambda: report(topology, "recommendations").get("bone-protection", {}).get("accepted") == 1)


def test_a_jti_used_on_replica_a_is_refused_on_replica_b(topology):
    captured = signing.token("/cds-services", base=topology.external)
    assert call(topology, topology.via_a, "GET", "/cds-services", token=captured).status_code == 200
    replayed = call(topology, topology.via_b, "GET", "/cds-services", token=captured)
    assert (replayed.status_code, replayed.content) == (401, b"")
    assert call(topology, topology.via_b, "GET", "/cds-services").status_code == 200


def test_a_not_now_on_replica_a_quiets_the_topic_on_replica_b(topology, hook_body):
    before = topics(cards_from(topology, topology.via_b, hook_body(SNOOZED)))
    assert before >= SNOOZED_TOPICS
    (card,) = [c for c in cards_from(topology, topology.via_a, hook_body(SNOOZED))["cards"]
               if c["source"]["topic"]["code"] == SNOOZED_CARD]
    feedback(topology, topology.via_a, {
        "card": card["uuid"], "outcome": "overridden",
        "overrideReason": {"reason": {"system": OVERRIDE_SYSTEM, "code": "not-now"}},
    })
    # Cards are recorded in batches every 250 ms: the override takes effect once its card's
    # record is written, whichever worker of replica A sent the card.
    after: list[set[str]] = []

    def quieted_on_b() -> bool:
        after.append(topics(cards_from(topology, topology.via_b, hook_body(SNOOZED))))
        return not SNOOZED_TOPICS & after[-1]

    wait_for("the snooze honoured by replica B", quieted_on_b)
    assert after[-1] == before - SNOOZED_TOPICS
    assert topics(cards_from(topology, topology.via_b, hook_body(SEEN))) == PATIENTS[SEEN].expected
    assert report(topology)[SNOOZED_CARD]["override_reasons"] == {"not-now": 1}


def test_the_audience_is_the_external_https_url(topology, hook_body):
    body = hook_body(SEEN)
    internal = topology.replica_a  # the replica's own address, as a misconfigured EHR might use
    at_replica = call(topology, internal, "POST", HOOK, aud_base=internal, json=body)
    assert (at_replica.status_code, at_replica.content) == (401, b"")
    proxied = call(topology, topology.external, "POST", HOOK, aud_base=internal, json=body)
    assert (proxied.status_code, proxied.content) == (401, b"")
    direct = call(topology, internal, "POST", HOOK, json=body)
    assert direct.status_code == 200, "the external audience, however the replica is reached"


def test_the_proxy_refuses_oversized_bodies_and_hides_metrics(topology):
    big = call(topology, topology.external, "POST", HOOK, content=b"x" * (9 * 1024 * 1024),
               headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    proxied = httpx.get(topology.external + "/metrics", verify=topology.tls, timeout=10)
    assert proxied.status_code == 404
    assert httpx.get(topology.replica_a + "/metrics", timeout=10).status_code == 200


def test_the_compose_file_fills_the_tested_proxy_template_and_points_it_at_its_replicas():
    """deploy/compose.yaml runs the template this module tests: every variable it needs is set,
    its two replicas are the compose file's own services, and their audience is https."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    proxy = services["proxy"]["environment"]
    needed = set(re.findall(r"\$\{(CDS_\w+)\}", TEMPLATE.read_text()))
    assert needed == {name for name in proxy if name.startswith("CDS_")}
    replicas = {proxy[name].split(":")[0] for name in ("CDS_REPLICA_1", "CDS_REPLICA_2")}
    assert len(replicas) == 2 and replicas <= set(services)
    for replica in replicas:
        assert services[replica]["environment"]["AIMSS_PUBLIC_BASE_URL"].startswith("https://")
        assert services[replica]["environment"]["AIMSS_DATABASE_URL"].startswith("postgresql://")
