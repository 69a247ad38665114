"""``python -m benchmarks``: AIMSS CDS against its floors, on this machine, in one run (DESIGN §7).

1. A real FHIR server (sekmet-fhir) holds realistic charts (``benchmarks/patients.py``); the
   complete prefetch of each is read from it with the service's own templates, as an EHR would.
2. The floors (``benchmarks/floor.py``: (a) FastAPI parsing the body, (b) the same verifying the
   same JWT, (c) raw ASGI reading every resource) and the service (JWT off; JWT on with RS384
   and with ES384 tokens) run side by side with the same workers; wrk drives each in turn, the
   order rotated every round, at every client count. Memory per worker after each count.
3. Scaling: floor (c) and the service on the same chart grown to each size.
4. A 10,000-resource chart posted to a one-worker service while wrk measures its ``/health``.
5. Without prefetch, the service reads the FHIR server through a proxy that adds a delay to
   every request: one hook call should cost about one delayed search, not the sum of them.
6. Start-up (spawn to ``/ready``) of the service, once everything else has stopped.

The tables are written to ``--out`` and printed. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cds_service.fhir.gather import render_template
from cds_service.fhir.resources import bundle_resources, next_link, patient_of
from cds_service.hooks.services import PATIENT_VIEW, build_services
from cds_service.knowledge.loader import load_knowledge
from cds_service.settings import Settings, default_profiles_dir
from sandbox.load import load_patients

from . import big_chart, charts, report
from .load import ALGORITHMS, Signer, Tokens, load_average, wrk_path
from .patients import realistic_patients
from .rounds import Contender, Driver
from .servers import ROOT, Server, Starting, free_port, spawn

HOOK_PATH = f"/cds-services/{PATIENT_VIEW}"
SEKMET = Path(os.environ.get("SEKMET_BIN", ROOT / ".fhir" / "venv" / "bin" / "sekmet"))
BIG_CHART_BODY_LIMIT = 64 * 2**20  # so the big chart is evaluated, not refused for its size;
# no other body comes near the 5 MB default, so the limit changes nothing else


@dataclass(frozen=True)
class Plan:
    clients: tuple[int, ...]
    rounds: int
    seconds: float
    warmup: float
    workers: int
    delay: float
    startups: int
    sizes: tuple[int, ...]
    big_chart: int
    big_seconds: float
    smoke: bool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16,64", help="concurrent clients, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds: every contender once a round")
    parser.add_argument("--seconds", type=float, default=5, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1, help="unmeasured seconds per contender first")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of each server")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added to each FHIR request")
    parser.add_argument("--sizes", default="100,200,400,800,1600", help="chart sizes of the scaling curve")
    parser.add_argument("--big-chart", type=int, default=10_000, help="resources in the very large chart")
    parser.add_argument(
        "--out", type=Path,
        help="where the tables go (default benchmarks/results.md; .data/benchmark-smoke.md with --smoke)",
    )
    parser.add_argument("--smoke", action="store_true", help="a short run, to check it works")
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs and data for a look")
    args = parser.parse_args(argv)
    if args.out is None:  # a smoke run never overwrites the measured results
        args.out = ROOT / (".data/benchmark-smoke.md" if args.smoke else "benchmarks/results.md")
    plan = Plan(
        clients=(1, 4) if args.smoke else numbers(args.clients),
        rounds=1 if args.smoke else args.rounds,
        seconds=1 if args.smoke else args.seconds,
        warmup=0 if args.smoke else args.warmup,
        workers=1 if args.smoke else args.workers,
        delay=args.delay,
        startups=1 if args.smoke else 3,
        sizes=(100, 400) if args.smoke else numbers(args.sizes),
        big_chart=args.big_chart,
        big_seconds=1 if args.smoke else 2 * args.seconds,
        smoke=args.smoke,
    )
    wrk_path()
    if not SEKMET.exists():
        raise SystemExit(f"{SEKMET} is missing: run benchmarks/run.sh (it installs the FHIR server)")
    work = Path(tempfile.mkdtemp(prefix="aimss-bench-"))
    try:
        text = run(plan, work)
    finally:
        if args.keep:
            print(f"servers' logs, databases and request bodies kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"(written to {args.out})")
    return 0


def numbers(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(","))


def run(plan: Plan, work: Path) -> str:
    load_at_start = load_average()
    driver = Driver()
    today = datetime.now(UTC).date()  # the service's clock
    patients = realistic_patients(today)
    signer = Signer()
    issuers = signer.write_issuers_file(work / "issuers.json")
    servers: list[Server] = []
    try:
        driver.note("starting the FHIR server, the floors and the services")
        fhir_starting = _start_fhir(work)
        starting = [
            _start_floor(work, "floor-ab", "benchmarks.floor:app", plan.workers, signer),
            _start_floor(work, "floor-c", "benchmarks.floor:raw_app", plan.workers, None),
            _start_service(work, "service-jwt-off", plan.workers, None),
            _start_service(work, "service-jwt-on", plan.workers, issuers),
            _start_proxy(work, fhir_starting.base_url, plan.delay),
        ]
        if plan.workers > 1:  # the big chart and /health must meet in one worker
            starting.append(_start_service(work, "service-1-worker", 1, issuers))
        fhir = fhir_starting.ready()
        servers.append(fhir)
        driver.note("loading the charts and reading their prefetch")
        with httpx.Client(timeout=60) as client:
            load_patients(fhir.base_url, patients, client)
            templates = build_services(load_knowledge(default_profiles_dir()))[PATIENT_VIEW].prefetch
            prefetches = [_complete_prefetch(client, fhir.base_url, templates, p.id) for p in patients]
        driver.bodies = [
            _write(work / f"prefetch-{n}.json", _hook_request(p.id, fhir.base_url, prefetch))
            for n, (p, prefetch) in enumerate(zip(patients, prefetches, strict=True))
        ]
        started = [s.ready() for s in starting]
        servers += started
        floor_ab, floor_c, open_service, service, proxy = started[:5]

        def tokens(server: Server, alg: str, *, single_use: bool) -> Tokens:
            return Tokens(signer, alg, server.base_url + HOOK_PATH, work, single_use=single_use)

        with_jwt = {
            alg: Contender(f"service {alg}", service, service.base_url + HOOK_PATH,
                           tokens(service, alg, single_use=True))
            for alg in ALGORITHMS
        }
        raw = Contender("floor (c)", floor_c, floor_c.base_url + HOOK_PATH)
        contenders = [
            Contender("floor (a)", floor_ab, floor_ab.base_url + "/parse" + HOOK_PATH),
            *(Contender(f"floor (b) {alg}", floor_ab, floor_ab.base_url + HOOK_PATH,
                        tokens(floor_ab, alg, single_use=False)) for alg in ALGORITHMS),
            raw,
            Contender("service, JWT off", open_service, open_service.base_url + HOOK_PATH),
            *with_jwt.values(),
        ]
        topics = {contender.label: _check(contender, driver.bodies[0], signer) for contender in contenders}

        memory: dict[int, dict[str, list[float]]] = {}
        for clients in plan.clients:
            driver.alternate(contenders, clients, plan.rounds, plan.seconds, plan.warmup)
            memory[clients] = {s.name: s.worker_rss_mb() for s in (floor_ab, floor_c, open_service, service)}

        sized = {
            size: _write(work / f"chart-{size}.json", _hook_request(
                patients[0].id, fhir.base_url, charts.scaled(prefetches[0], size)))
            for size in plan.sizes
        }
        for size, body in sized.items():
            driver.alternate([raw, with_jwt["RS384"]], 1, plan.rounds, plan.seconds, plan.warmup,
                             what=f"scaling-{size}", bodies=[body])

        driver.note(f"a {plan.big_chart:,}-resource chart, and /health beside it")
        big_service = started[-1] if plan.workers > 1 else service
        big_body = _write(work / "big-chart.json", _hook_request(
            patients[0].id, fhir.base_url, charts.scaled(prefetches[0], plan.big_chart)))
        big = big_chart.measure(
            big_service.base_url + HOOK_PATH, big_service.base_url + "/health", big_body,
            plan.big_chart, signer, "RS384", plan.big_seconds,
        )

        driver.note("without prefetch")
        searches = _time_searches(proxy.base_url, templates, patients[0].id, 1 if plan.smoke else 5)
        searches_at_once = asyncio.run(
            _time_searches_at_once(proxy.base_url, templates, patients[0].id, 1 if plan.smoke else 5)
        )
        fallback_body = _write(work / "fallback.json", _hook_request(patients[0].id, proxy.base_url, None))
        fallback_topics = _check(with_jwt["RS384"], fallback_body, signer)
        fallback = driver.measure(with_jwt["RS384"], 1, plan.seconds, [fallback_body])
    finally:
        for server in reversed(servers):
            server.stop()
    driver.note("start-up, with nothing else running")
    startups = []
    for n in range(plan.startups):
        server = _start_service(work, f"startup-{n}", 1, issuers).ready()
        server.stop()
        startups.append(server.startup_seconds)
    return report.render(report.Inputs(
        plan=plan, machine=_machine(), load_at_start=load_at_start, load_at_end=load_average(),
        patients=[(p.id, charts.resource_count(prefetch)) for p, prefetch in zip(patients, prefetches, strict=True)],
        body_kb=[b.stat().st_size / 1024 for b in driver.bodies], topics=topics, runs=driver.runs, memory=memory,
        sizes={size: body.stat().st_size / 1024 for size, body in sized.items()},
        big=big, deadline=Settings.model_fields["hook_deadline"].default,
        startups=startups, searches=searches, searches_at_once=searches_at_once,
        fallback=fallback, fallback_topics=fallback_topics,
    ))


def _start_fhir(work: Path) -> Starting:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    settings = work / "sekmet.yaml"
    settings.write_text(
        f"base_url: {base}\nhost: 127.0.0.1\nport: {port}\ndb_path: {work}/fhir.db\n"
        "simulator: {enabled: false}\nlog_inbound: false\n"
    )
    return spawn("fhir", [str(SEKMET), "serve", "-c", str(settings)], dict(os.environ), base, "/metadata", work)


def _start_service(work: Path, name: str, workers: int, issuers: Path | None) -> Starting:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMSS_")}
    env |= {
        "AIMSS_DATABASE_URL": f"sqlite:///{work}/{name}-{port}.db",
        "AIMSS_ALLOW_OPEN_FHIR": "1",  # the fallback run reads the local FHIR server over http
        "AIMSS_PUBLIC_BASE_URL": base,
        "AIMSS_MAX_BODY_BYTES": str(BIG_CHART_BODY_LIMIT),
    }
    env |= {"AIMSS_TRUSTED_ISSUERS_FILE": str(issuers)} if issuers else {"AIMSS_AUTH_DISABLED": "1"}
    command = [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", str(workers)]
    return spawn(name, command, env, base, "/ready", work)


def _start_floor(work: Path, name: str, app: str, workers: int, signer: Signer | None) -> Starting:
    port = free_port()
    env = dict(os.environ)
    if signer is not None:
        env["AIMSS_BENCH_FLOOR_JWKS"] = str(signer.write_jwks(work / "floor-jwks.json"))
    command = [
        sys.executable, "-m", "uvicorn", app, "--port", str(port),
        "--workers", str(workers), "--log-level", "warning", "--no-access-log",
    ]
    ready = "/openapi.json" if app.endswith(":app") else "/"
    return spawn(name, command, env, f"http://127.0.0.1:{port}", ready, work)


def _start_proxy(work: Path, upstream: str, delay: float) -> Starting:
    port = free_port()
    command = [
        sys.executable, "-m", "benchmarks.fhir_delay", "--upstream", upstream,
        "--port", str(port), "--delay", str(delay),
    ]
    return spawn("fhir-delay", command, dict(os.environ), f"http://127.0.0.1:{port}/fhir", "/metadata", work)


def _complete_prefetch(
    client: httpx.Client, base: str, templates: dict[str, str], patient_id: str
) -> dict[str, Any]:
    """Every key as one searchset Bundle, all pages read, as an EHR sends complete prefetch."""
    prefetch = {}
    for key, template in templates.items():
        query = render_template(template, {"patientId": patient_id, "userId": "Practitioner/bench"})
        assert query is not None
        resources = [  # sekmet ignores ?patient= on some types (see cds_service.fhir.gather)
            r for r in _search(client, f"{base}/{query}") if patient_of(r) == patient_id
        ]
        prefetch[key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "entry": [
                {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                for r in resources
            ],
        }
    return prefetch


def _search(client: httpx.Client, url: str | None) -> Iterator[Mapping[str, Any]]:
    while url is not None:
        response = client.get(url, headers={"Accept": "application/fhir+json"})
        response.raise_for_status()
        bundle = response.json()
        yield from bundle_resources(bundle)
        url = next_link(bundle)


def _hook_request(patient_id: str, fhir_server: str, prefetch: dict[str, Any] | None) -> dict[str, Any]:
    request = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_server,
        "context": {"userId": "Practitioner/bench", "patientId": patient_id},
    }
    return request | ({"prefetch": prefetch} if prefetch is not None else {})


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document))
    return path


def _check(contender: Contender, body: Path, signer: Signer) -> list[str]:
    """One call before the load: it must answer 200 with cards, or the figures would mean nothing."""
    headers = {"Content-Type": "application/json"}
    if contender.tokens is not None:
        headers["Authorization"] = f"Bearer {signer.token(contender.tokens.alg, contender.url)}"
    response = httpx.post(contender.url, content=body.read_bytes(), headers=headers, timeout=10)
    if response.status_code != 200 or not response.json().get("cards"):
        raise RuntimeError(f"{contender.label} answered {response.status_code}: {response.text[:500]}")
    return [card["source"].get("topic", {}).get("code", "-") for card in response.json()["cards"]]


def _time_searches(base: str, templates: dict[str, str], patient_id: str, samples: int) -> dict[str, float]:
    """The median time of each prefetch query through the delaying proxy, one at a time (ms)."""
    timings: dict[str, float] = {}
    with httpx.Client(timeout=30) as client:
        for key, template in templates.items():
            url = f"{base}/{render_template(template, {'patientId': patient_id, 'userId': 'Practitioner/bench'})}"
            times = []
            for _ in range(samples):
                began = time.perf_counter()
                client.get(url).raise_for_status()
                times.append((time.perf_counter() - began) * 1000)
            timings[key] = statistics.median(times)
    return timings


async def _time_searches_at_once(base: str, templates: dict[str, str], patient_id: str, samples: int) -> float:
    """The median time of all prefetch queries sent together by a bare client (ms): what the
    FHIR server itself takes to answer them in parallel, the floor of a call without prefetch."""
    context = {"patientId": patient_id, "userId": "Practitioner/bench"}
    urls = [f"{base}/{render_template(template, context)}" for template in templates.values()]
    times = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(samples + 1):  # the first opens the connections
            began = time.perf_counter()
            for answer in await asyncio.gather(*(client.get(url) for url in urls)):
                answer.raise_for_status()
            times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times[1:])


def _machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    wrk = " ".join(subprocess.run([wrk_path(), "--version"], capture_output=True, text=True).stdout.split()[:2])
    return (f"{cpu}, nproc {os.cpu_count()}, {memory_gb:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, {wrk}")


if __name__ == "__main__":
    sys.exit(main())
