"""``python -m benchmarks``: AIMSS CDS against its floor, on this machine, in one run (DESIGN §7).

1. A real FHIR server (sekmet-fhir) holds realistic charts (``benchmarks/patients.py``); the
   complete prefetch of each is read from it with the service's own templates, as an EHR would.
2. The floor (``benchmarks/floor.py``), the service with JWT checks off, and the service with JWT
   checks on (RS384 tokens, one per request) run side by side with the same workers; wrk drives
   each with the same hook requests at every client count.
3. Without prefetch, the service reads the FHIR server through a proxy that adds a delay to every
   request: one hook call should cost about one delayed search, not the sum of ten.
4. Start-up (spawn to ``/ready``) and memory per worker.

The table is written to ``--out`` and printed. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cds_service.fhir.gather import render_template
from cds_service.fhir.resources import bundle_resources, next_link, patient_of
from cds_service.hooks.services import PATIENT_VIEW, build_services
from cds_service.knowledge.loader import load_knowledge
from cds_service.settings import default_profiles_dir
from sandbox.load import load_patients

from .load import LoadResult, Signer, drive, wrk_path
from .patients import realistic_patients
from .servers import ROOT, Server, free_port, start

HOOK_PATH = f"/cds-services/{PATIENT_VIEW}"
SEKMET = Path(os.environ.get("SEKMET_BIN", ROOT / ".fhir" / "venv" / "bin" / "sekmet"))
TARGETS = {"p99_ms_at_16": 25.0, "ratio": 1.5, "fallback_ratio": 2.0, "startup_s": 2.0, "rss_mb": 150.0}


@dataclass(frozen=True)
class Plan:
    clients: tuple[int, ...]
    seconds: float
    warmup: float
    workers: int
    delay: float
    startups: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16,64", help="concurrent clients, comma-separated")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each run")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of each server")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added to each FHIR request")
    parser.add_argument(
        "--out", type=Path,
        help="where the table goes (default benchmarks/results.md; .data/benchmark-smoke.md with --smoke)",
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds in all, to check it works")
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs and data for a look")
    args = parser.parse_args(argv)
    if args.out is None:  # a smoke run never overwrites the measured results
        args.out = ROOT / (".data/benchmark-smoke.md" if args.smoke else "benchmarks/results.md")
    plan = Plan(
        clients=(1, 4) if args.smoke else tuple(int(c) for c in args.clients.split(",")),
        seconds=1 if args.smoke else args.seconds,
        warmup=0 if args.smoke else args.warmup,
        workers=args.workers,
        delay=args.delay,
        startups=1 if args.smoke else 3,
    )
    wrk_path()
    if not SEKMET.exists():
        raise SystemExit(f"{SEKMET} is missing: run benchmarks/run.sh (it installs the FHIR server)")
    work = Path(tempfile.mkdtemp(prefix="aimss-bench-"))
    try:
        report = run(plan, work)
    finally:
        if args.keep:
            print(f"servers' logs, databases and request bodies kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"(written to {args.out})")
    return 0


def run(plan: Plan, work: Path) -> str:
    today = datetime.now(UTC).date()  # the service's clock
    patients = realistic_patients(today)
    servers: list[Server] = []
    try:
        fhir = _start_fhir(work)
        servers.append(fhir)
        with httpx.Client(timeout=60) as client:
            load_patients(fhir.base_url, patients, client)
            templates = build_services(load_knowledge(default_profiles_dir()))[PATIENT_VIEW].prefetch
            prefetches = [_complete_prefetch(client, fhir.base_url, templates, p.id) for p in patients]
        bodies = [
            _write(work / f"prefetch-{n}.json", _hook_request(p.id, fhir.base_url, prefetch))
            for n, (p, prefetch) in enumerate(zip(patients, prefetches, strict=True))
        ]
        signer = Signer()
        issuers = signer.write_issuers_file(work / "issuers.json")
        startups = [_start_service(work, "startup", 1, issuers) for _ in range(plan.startups)]
        for server in startups:
            server.stop()
        floor = _start_floor(work, plan.workers)
        servers.append(floor)
        open_service = _start_service(work, "service-jwt-off", plan.workers, None)
        servers.append(open_service)
        service = _start_service(work, "service-jwt-on", plan.workers, issuers)
        servers.append(service)
        topics = {
            server.name: _check(server, bodies[0], signer if server is service else None)
            for server in (floor, open_service, service)
        }

        rows: list[tuple[str, LoadResult, LoadResult]] = []
        for clients in plan.clients:
            base = _measure(floor, clients, plan, bodies, None)
            rows.append(("floor", base, base))
            without_jwt = _measure(open_service, clients, plan, bodies, None)
            rows.append(("service, JWT off", without_jwt, base))
            def tokens(seconds: float, rate: float = without_jwt.per_second) -> Path:
                """A fresh file per wrk run (each starts at its first token), with room to spare."""
                needed = math.ceil(rate * (seconds + 1) * 1.5) + 100
                return signer.write_tokens(work / f"tokens-{uuid.uuid4()}.txt", service.base_url + HOOK_PATH, needed)

            rows.append(("service, JWT on", _measure(service, clients, plan, bodies, tokens), base))
        memory = {server.name: server.worker_rss_mb() for server in (floor, open_service, service)}

        proxy = _start_proxy(work, fhir.base_url, plan.delay)
        servers.append(proxy)
        searches = _time_searches(proxy.base_url, templates, patients[0].id)
        fallback_body = _write(work / "fallback.json", _hook_request(patients[0].id, proxy.base_url, None))
        fallback_topics = _check(service, fallback_body, signer)
        tokens = signer.write_tokens(
            work / "tokens-fallback.txt", service.base_url + HOOK_PATH, int(plan.seconds * 40) + 50
        )
        fallback = drive(service.base_url + HOOK_PATH, 1, plan.seconds, [fallback_body], tokens)
    finally:
        for server in reversed(servers):
            server.stop()
    return _report(
        plan, patients, bodies, rows, topics, memory, [s.startup_seconds for s in startups],
        searches, fallback, fallback_topics,
    )


def _start_fhir(work: Path) -> Server:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    settings = work / "sekmet.yaml"
    settings.write_text(
        f"base_url: {base}\nhost: 127.0.0.1\nport: {port}\ndb_path: {work}/fhir.db\n"
        "simulator: {enabled: false}\nlog_inbound: false\n"
    )
    return start("fhir", [str(SEKMET), "serve", "-c", str(settings)], dict(os.environ), base, "/metadata", work)


def _start_service(work: Path, name: str, workers: int, issuers: Path | None) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMSS_")}
    env |= {
        "AIMSS_DATABASE_URL": f"sqlite:///{work}/{name}-{port}.db",
        "AIMSS_ALLOW_OPEN_FHIR": "1",  # the fallback run reads the local FHIR server over http
    }
    env |= {"AIMSS_TRUSTED_ISSUERS_FILE": str(issuers)} if issuers else {"AIMSS_AUTH_DISABLED": "1"}
    command = [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", str(workers)]
    return start(name, command, env, f"http://127.0.0.1:{port}", "/ready", work)


def _start_floor(work: Path, workers: int) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "benchmarks.floor:app", "--port", str(port),
        "--workers", str(workers), "--log-level", "warning", "--no-access-log",
    ]
    return start("floor", command, dict(os.environ), f"http://127.0.0.1:{port}", "/openapi.json", work)


def _start_proxy(work: Path, upstream: str, delay: float) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "benchmarks.fhir_delay", "--upstream", upstream,
        "--port", str(port), "--delay", str(delay),
    ]
    base = f"http://127.0.0.1:{port}/fhir"
    return start("fhir-delay", command, dict(os.environ), base, "/metadata", work)


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


def _search(client: httpx.Client, url: str | None) -> Iterator[dict[str, Any]]:
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


def _check(server: Server, body: Path, signer: Signer | None) -> list[str]:
    """One call before the load: it must answer 200 with cards, or the figures would mean nothing."""
    url = server.base_url + HOOK_PATH
    headers = {"Content-Type": "application/json"}
    if signer is not None:
        headers["Authorization"] = f"Bearer {signer.token(url)}"
    response = httpx.post(url, content=body.read_bytes(), headers=headers, timeout=10)
    if response.status_code != 200 or not response.json().get("cards"):
        raise RuntimeError(f"{server.name} answered {response.status_code}: {response.text[:500]}")
    return [card["source"].get("topic", {}).get("code", "-") for card in response.json()["cards"]]


def _measure(
    server: Server, clients: int, plan: Plan, bodies: list[Path], tokens: Callable[[float], Path] | None
) -> LoadResult:
    url = server.base_url + HOOK_PATH
    try:
        if plan.warmup:
            drive(url, clients, plan.warmup, bodies, tokens(plan.warmup) if tokens else None)
        return drive(url, clients, plan.seconds, bodies, tokens(plan.seconds) if tokens else None)
    except RuntimeError as error:
        state = "running" if server.process.poll() is None else f"exited ({server.process.returncode})"
        raise RuntimeError(
            f"{error}\n{server.name} is {state}; the end of its log:\n{server.log.read_text()[-3000:]}"
        ) from error


def _time_searches(base: str, templates: dict[str, str], patient_id: str) -> dict[str, float]:
    """The median time of each prefetch query through the delaying proxy, one at a time (ms)."""
    timings: dict[str, float] = {}
    with httpx.Client(timeout=30) as client:
        for key, template in templates.items():
            url = f"{base}/{render_template(template, {'patientId': patient_id, 'userId': 'Practitioner/bench'})}"
            samples = []
            for _ in range(5):
                began = time.perf_counter()
                client.get(url).raise_for_status()
                samples.append((time.perf_counter() - began) * 1000)
            timings[key] = statistics.median(samples)
    return timings


def _report(
    plan: Plan,
    patients: list[Any],
    bodies: list[Path],
    rows: list[tuple[str, LoadResult, LoadResult]],
    topics: dict[str, list[str]],
    memory: dict[str, list[float]],
    startups: list[float],
    searches: dict[str, float],
    fallback: LoadResult,
    fallback_topics: list[str],
) -> str:
    sizes = ", ".join(f"{b.stat().st_size / 1024:.0f} KB" for b in bodies)
    counts = ", ".join(str(len(p.resources)) for p in patients)
    lines = [
        "# AIMSS CDS benchmark",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_machine()}.",
        f"Each server: `--workers {plan.workers}`; wrk, one thread; {plan.seconds:g} s measured per run "
        f"after {plan.warmup:g} s of warm-up. Charts: {len(patients)} patients of {counts} resources; "
        f"hook requests with complete prefetch of {sizes}. The service answered "
        f"{len(topics['service-jwt-on'])} cards ({', '.join(topics['service-jwt-on'])}); the floor one fixed card.",
        "",
        "## With complete prefetch",
        "",
        "| server | clients | req/s | p50 ms | p95 ms | p99 ms | p50 / floor | p99 / floor | non-2xx | errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, result, base in rows:
        lines.append(
            f"| {name} | {result.clients} | {result.per_second:.0f} | {result.p50_ms:.2f} | "
            f"{result.p95_ms:.2f} | {result.p99_ms:.2f} | {result.p50_ms / base.p50_ms:.2f} | "
            f"{result.p99_ms / base.p99_ms:.2f} | {result.non_2xx} | {result.socket_errors} |"
        )
    slowest_key = max(searches, key=searches.__getitem__)
    slowest = searches[slowest_key]
    lines += [
        "",
        f"## Without prefetch (the FHIR server plus {plan.delay * 1000:.0f} ms per request)",
        "",
        "| what | ms |",
        "|---|--:|",
        f"| one search, the slowest of the {len(searches)} (`{slowest_key}`, median of 5) | {slowest:.1f} |",
        f"| all {len(searches)} searches one after another (sum of medians) | {sum(searches.values()):.1f} |",
        f"| hook call, 1 client, p50 / p95 / p99 | {fallback.p50_ms:.1f} / {fallback.p95_ms:.1f} / "
        f"{fallback.p99_ms:.1f} |",
        f"| hook call p50 / slowest search | {fallback.p50_ms / slowest:.2f} |",
        "",
        f"{fallback.requests} calls, {fallback.non_2xx} non-2xx, {fallback.socket_errors} errors; cards: "
        f"{', '.join(fallback_topics)}.",
        "",
        "## Start-up and memory",
        "",
        "| what | value |",
        "|---|--:|",
        f"| start-up, spawn to `/ready` 200 (1 worker; {len(startups)} runs) | "
        f"{' / '.join(f'{s:.2f}' for s in startups)} s |",
    ]
    lines += [
        f"| memory per worker after the load, {name} | {' / '.join(f'{mb:.0f}' for mb in rss)} MB |"
        for name, rss in memory.items()
    ]
    lines += ["", "## Against the targets of DESIGN §7", "", *_verdicts(rows, slowest, fallback, startups, memory)]
    return "\n".join(lines) + "\n"


def _verdicts(
    rows: list[tuple[str, LoadResult, LoadResult]],
    slowest: float,
    fallback: LoadResult,
    startups: list[float],
    memory: dict[str, list[float]],
) -> list[str]:
    def mark(ok: bool) -> str:
        return "met" if ok else "**NOT met**"

    lines = []
    for name in ("service, JWT off", "service, JWT on"):
        mine = [(result, base) for label, result, base in rows if label == name]
        worst = max(result.p50_ms / base.p50_ms for result, base in mine)
        lines.append(f"- {name}: p50 within {TARGETS['ratio']}x of the floor at every client count "
                     f"(worst {worst:.2f}x): {mark(worst <= TARGETS['ratio'])}")
        at_16 = [result for result, _ in mine if result.clients == 16]
        if at_16:
            p99 = at_16[0].p99_ms
            lines.append(f"- {name}: p99 at 16 clients under {TARGETS['p99_ms_at_16']:g} ms "
                         f"({p99:.1f} ms): {mark(p99 < TARGETS['p99_ms_at_16'])}")
        unclean = sum(not result.clean for result, _ in mine)
        if unclean:
            lines.append(f"- {name}: {unclean} runs had non-2xx answers or socket errors: their figures are void")
    ratio = fallback.p50_ms / slowest
    lines.append(f"- without prefetch, hook call under {TARGETS['fallback_ratio']:g}x one delayed search "
                 f"({ratio:.2f}x): {mark(ratio < TARGETS['fallback_ratio'] and fallback.clean)}")
    lines.append(f"- start-up under {TARGETS['startup_s']:g} s (slowest {max(startups):.2f} s): "
                 f"{mark(max(startups) < TARGETS['startup_s'])}")
    heaviest = max(max(memory["service-jwt-off"]), max(memory["service-jwt-on"]))
    lines.append(f"- memory under {TARGETS['rss_mb']:g} MB per worker (largest {heaviest:.0f} MB): "
                 f"{mark(heaviest < TARGETS['rss_mb'])}")
    return lines


def _machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.machine(),
    )
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    wrk = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True).stdout.split()[:2]
    return (f"{cpu}, {os.cpu_count()} cores, {memory_gb:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, {' '.join(wrk)}")


if __name__ == "__main__":
    sys.exit(main())
