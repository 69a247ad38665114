"""The benchmark's tables: the targets of DESIGN §7 first, then the ratios, the scaling curve,
the big chart, the fallback, start-up and memory, and every run with the machine's load."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .big_chart import BigChartResult
from .load import ALGORITHMS, LoadResult
from .rounds import Run, Spread, per_round, ratio, spread

TARGETS = {
    "p50_ratio": 2.0, "throughput_ratio": 0.5, "us_per_resource": 10.0, "linear": 1.5,
    "health_p99_ms": 50.0, "fallback_ratio": 1.5, "startup_s": 2.0, "rss_mb": 150.0,
}
SERVICE_WORKERS = ("service-jwt-off", "service-jwt-on")
COMPARISONS = [
    *((f"service {alg}", f"floor (b) {alg}") for alg in ALGORITHMS),
    ("service, JWT off", "floor (a)"),
    ("floor (b) RS384", "floor (a)"),
    ("floor (b) ES384", "floor (a)"),
    ("floor (a)", "floor (c)"),
]


@dataclass(frozen=True)
class Inputs:
    plan: Any
    machine: str
    load_at_start: float
    load_at_end: float
    patients: list[tuple[str, int]]
    body_kb: list[float]
    topics: dict[str, list[str]]
    runs: list[Run]
    memory: dict[int, dict[str, list[float]]]
    sizes: dict[int, float]
    big: BigChartResult
    deadline: float
    startups: list[float]
    searches: dict[str, float]
    searches_at_once: float
    fallback: LoadResult
    fallback_topics: list[str]


def _p50(result: LoadResult) -> float:
    return result.p50_ms


def _rate(result: LoadResult) -> float:
    return result.per_second


def render(inputs: Inputs) -> str:
    plan = inputs.plan
    hooks = [run for run in inputs.runs if run.what == "hook"]
    counts = ", ".join(str(n) for _, n in inputs.patients)
    sizes = ", ".join(f"{kb:.0f} KB" for kb in inputs.body_kb)
    lines = [
        "# AIMSS CDS benchmark" + (" (smoke run: too short to mean anything)" if plan.smoke else ""),
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {inputs.machine}. The machine's 1-minute "
        f"load average was {inputs.load_at_start:.2f} at the start and {inputs.load_at_end:.2f} at the "
        "end; each run's is in the last table. **Figures from a loaded machine are upper bounds**: "
        "other work slows every contender, and ratios taken within a round cancel much of it, not all.",
        "",
        f"Every server has `--workers {plan.workers}`; wrk drives it with one thread for "
        f"{plan.seconds:g} s a run, after {plan.warmup:g} s of warm-up per contender, in {plan.rounds} "
        "rounds whose order is rotated each round. Charts: "
        f"{len(inputs.patients)} patients of {counts} resources; hook requests with their complete "
        f"prefetch, {sizes}. The service answered {len(inputs.topics['service RS384'])} cards "
        f"({', '.join(inputs.topics['service RS384'])}); the floors one fixed card.",
        "",
        "Floors: **(a)** a bare FastAPI endpoint parsing the same body with the service's wire model; "
        "**(b)** the same, also verifying the same JWT (RS384 or ES384; no replay guard); (a) and (b) decode "
        "the body as bare FastAPI does, with the standard library; **(c)** a raw ASGI endpoint decoding "
        "the body with orjson, as the service does, and reading every resource once. Each freezes its start-up "
        "objects (`gc.freeze`) as the service does. The service runs with JWT checks off, and on "
        "with RS384 and ES384 tokens (a fresh `jti` a call, so every call writes the replay guard).",
        "",
        "## Against the targets of DESIGN §7",
        "",
        "| target | measured | load | |",
        "|---|---|--:|---|",
        *_targets(inputs, hooks),
        "",
        f"## Ratios to the floors (median of {plan.rounds} rounds [lowest–highest])",
        "",
        "| comparison | clients | p50 ratio | throughput ratio |",
        "|---|--:|--:|--:|",
    ]
    for clients in plan.clients:
        for mine, floor in COMPARISONS:
            p50, rate = ratio(hooks, mine, floor, clients, _p50), ratio(hooks, mine, floor, clients, _rate)
            if p50 and rate:
                lines.append(f"| {mine} / {floor} | {clients} | {p50.text()} | {rate.text()} |")
    lines += [
        "",
        f"## Each contender (median of {plan.rounds} rounds [lowest–highest])",
        "",
        "| contender | clients | calls/s | p50 ms | p99 ms | load |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    labels = list(dict.fromkeys(run.label for run in hooks))
    for clients in plan.clients:
        for label in labels:
            rate, p50, p99 = (spread(hooks, label, clients, f) for f in (_rate, _p50, lambda r: r.p99_ms))
            if rate and p50 and p99:
                lines.append(f"| {label} | {clients} | {rate.text(0)} | {p50.text()} | {p99.text()} | "
                             f"{_load(per_round(hooks, label, clients).values())} |")
    lines += ["", *_scaling(inputs), "", *_big_chart(inputs), "", *_fallback(inputs), "", *_startup_memory(inputs)]
    lines += [
        "",
        "## Every run",
        "",
        "| what | round | contender | clients | calls/s | p50 ms | p95 ms | p99 ms | max ms | non-2xx | errors | load before → after |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    every = [*inputs.runs, *_extra_runs(inputs)]
    for run in every:
        r = run.result
        lines.append(
            f"| {run.what} | {run.round + 1} | {run.label} | {r.clients} | {r.per_second:.0f} | {r.p50_ms:.2f} | "
            f"{r.p95_ms:.2f} | {r.p99_ms:.2f} | {r.max_ms:.1f} | {r.non_2xx} | {r.socket_errors} | "
            f"{r.load_before:.2f} → {r.load_after:.2f} |"
        )
    unclean = sum(not run.result.clean for run in every) + (not inputs.big.clean)
    lines += ["", f"{len(every)} load runs; {unclean} with a non-2xx answer, a socket error or a 5xx"
              + ("." if unclean == 0 else ": their figures are void.")]
    return "\n".join(lines) + "\n"


def _extra_runs(inputs: Inputs) -> list[Run]:
    big = inputs.big
    return [
        Run("health, alone", "service, 1 worker", 0, big.health_alone),
        Run("health, big chart", "service, 1 worker", 0, big.health_during),
        Run("no prefetch", "service RS384", 0, inputs.fallback),
    ]


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _load(results: Iterable[LoadResult]) -> str:
    values = [value for r in results for value in (r.load_before, r.load_after)]
    return f"{min(values):.1f}–{max(values):.1f}" if values else "-"


def _targets(inputs: Inputs, hooks: list[Run]) -> list[str]:
    plan = inputs.plan
    rows = []
    one = 1 if 1 in plan.clients else min(plan.clients)
    many = 16 if 16 in plan.clients else max(plan.clients)
    for alg in ALGORITHMS:
        mine, floor = f"service {alg}", f"floor (b) {alg}"
        p50 = ratio(hooks, mine, floor, one, _p50)
        if p50:
            ms = spread(hooks, mine, one, _p50)
            base = spread(hooks, floor, one, _p50)
            assert ms and base
            rows.append(
                f"| p50 at {one} client within {TARGETS['p50_ratio']:g}× floor (b), {alg} | "
                f"{p50.text()}× ({ms.text()} ms against {base.text()} ms) | "
                f"{_load([*per_round(hooks, mine, one).values(), *per_round(hooks, floor, one).values()])} | "
                f"{_mark(p50.median <= TARGETS['p50_ratio'])} |"
            )
    for alg in ALGORITHMS:
        mine, floor = f"service {alg}", f"floor (b) {alg}"
        rate = ratio(hooks, mine, floor, many, _rate)
        if rate:
            calls, base = spread(hooks, mine, many, _rate), spread(hooks, floor, many, _rate)
            assert calls and base
            rows.append(
                f"| throughput at {many} clients at least {TARGETS['throughput_ratio']:g}× floor (b), {alg} | "
                f"{rate.text()}× ({calls.text(0)} against {base.text(0)} calls/s) | "
                f"{_load([*per_round(hooks, mine, many).values(), *per_round(hooks, floor, many).values()])} | "
                f"{_mark(rate.median >= TARGETS['throughput_ratio'])} |"
            )
    curve = _curve(inputs)
    if curve is not None:
        fixed, slope, steps = curve
        largest = max(inputs.sizes)
        worst = max(steps.values()) if steps else slope
        scaling_runs = [run.result for run in inputs.runs if run.what.startswith("scaling-")]
        rows.append(
            f"| under {TARGETS['us_per_resource']:g} µs per resource | {slope:.1f} µs per resource "
            f"(fitted over {', '.join(map(str, inputs.sizes))}; {fixed:.2f} ms fixed) | {_load(scaling_runs)} | "
            f"{_mark(slope < TARGETS['us_per_resource'])} |"
        )
        rows.append(
            f"| linear to {largest:,} resources (no step above {TARGETS['linear']:g}× the fitted cost) | "
            f"steepest step {worst:.1f} µs per added resource | {_load(scaling_runs)} | "
            f"{_mark(worst <= TARGETS['linear'] * slope)} |"
        )
    big = inputs.big
    answered = ", ".join(f"{status or 'dropped'} ×{n}" for status, n in sorted(big.statuses.items()))
    during = big.health_during
    rows.append(
        f"| a {big.resources:,}-resource chart answered or refused within the deadline "
        f"({inputs.deadline:g} s) | {answered}; slowest {max(big.call_ms):.0f} ms | "
        f"{_load([big.health_during])} | {_mark(big.clean and max(big.call_ms) <= inputs.deadline * 1000)} |"
    )
    rows.append(
        f"| … while `/health` stays fast (p99 under {TARGETS['health_p99_ms']:g} ms, same worker) | "
        f"p50 {during.p50_ms:.1f} / p99 {during.p99_ms:.1f} / max {during.max_ms:.0f} ms (alone: p99 "
        f"{big.health_alone.p99_ms:.1f} ms) | {_load([during])} | "
        f"{_mark(during.clean and during.p99_ms < TARGETS['health_p99_ms'])} |"
    )
    slowest = max(inputs.searches.values())
    fallback = inputs.fallback
    rows.append(
        f"| without prefetch within {TARGETS['fallback_ratio']:g}× the slowest single search | "
        f"{fallback.p50_ms / slowest:.2f}× ({fallback.p50_ms:.0f} ms against {slowest:.0f} ms) | "
        f"{_load([fallback])} | {_mark(fallback.clean and fallback.p50_ms / slowest <= TARGETS['fallback_ratio'])} |"
    )
    at_once = inputs.searches_at_once
    rows.append(
        f"| … against all the searches sent at once by a bare client (the FHIR server's own time "
        f"for them) | {fallback.p50_ms / at_once:.2f}× ({fallback.p50_ms:.0f} ms against {at_once:.0f} ms) | "
        f"{_load([fallback])} | - |"
    )
    rows.append(
        f"| start-up under {TARGETS['startup_s']:g} s | slowest of {len(inputs.startups)}: "
        f"{max(inputs.startups):.2f} s | {inputs.load_at_end:.1f} | {_mark(max(inputs.startups) < TARGETS['startup_s'])} |"
    )
    largest_clients = max(inputs.memory)
    heaviest = max(mb for name in SERVICE_WORKERS for mb in inputs.memory[largest_clients][name])
    rows.append(
        f"| under {TARGETS['rss_mb']:g} MB per worker at {largest_clients} clients | largest worker "
        f"{heaviest:.0f} MB | - | {_mark(heaviest < TARGETS['rss_mb'])} |"
    )
    return rows


def _excess(inputs: Inputs, size: int) -> Spread | None:
    """Service minus floor (c), p50 at 1 client, per round: what the service adds to reading."""
    runs = [run for run in inputs.runs if run.what == f"scaling-{size}"]
    service, floor = per_round(runs, "service RS384", 1), per_round(runs, "floor (c)", 1)
    values = [service[n].p50_ms - floor[n].p50_ms for n in sorted(service.keys() & floor.keys())]
    return Spread.of(values) if values else None


def _curve(inputs: Inputs) -> tuple[float, float, dict[int, float]] | None:
    """The fitted fixed ms and µs per resource of the excess, and each step's µs per added resource."""
    points = [(size, excess.median) for size in sorted(inputs.sizes) if (excess := _excess(inputs, size))]
    if len(points) < 2:
        return None
    slope, intercept = statistics.linear_regression([s for s, _ in points], [ms for _, ms in points])
    steps = {b: (mb - ma) * 1000 / (b - a) for (a, ma), (b, mb) in itertools.pairwise(points)}
    return intercept, slope * 1000, steps


def _scaling(inputs: Inputs) -> list[str]:
    lines = [
        f"## Scaling with chart size (1 client, RS384, median of {inputs.plan.rounds} rounds [lowest–highest])",
        "",
        "The realistic chart grown to each size with the same mix of resources (the k-th copy of a "
        "resource under a new id). The excess is the service's p50 minus floor (c)'s in the same "
        "round: what the service adds to decoding and reading the body.",
        "",
        "| resources | body KB | floor (c) p50 ms | service p50 ms | excess ms | µs per resource (excess / n) | µs per added resource |",
        "|--:|--:|--:|--:|--:|--:|--:|",
    ]
    curve = _curve(inputs)
    steps = curve[2] if curve else {}
    for size, kb in sorted(inputs.sizes.items()):
        runs = [run for run in inputs.runs if run.what == f"scaling-{size}"]
        floor, service = spread(runs, "floor (c)", 1, _p50), spread(runs, "service RS384", 1, _p50)
        excess = _excess(inputs, size)
        if not (floor and service and excess):
            continue
        step = f"{steps[size]:.1f}" if size in steps else "-"
        lines.append(f"| {size:,} | {kb:.0f} | {floor.text()} | {service.text()} | {excess.text()} | "
                     f"{excess.median * 1000 / size:.1f} | {step} |")
    if curve:
        lines += ["", f"Fitted: excess ≈ {curve[0]:.2f} ms + {curve[1]:.1f} µs × resources."]
    return lines


def _big_chart(inputs: Inputs) -> list[str]:
    big = inputs.big
    calls = sorted(big.call_ms)
    answered = ", ".join(f"{status or 'dropped'} ×{n}" for status, n in sorted(big.statuses.items()))

    def health(result: LoadResult) -> str:
        return f"{result.p50_ms:.2f} / {result.p99_ms:.2f} / {result.max_ms:.1f} ({result.requests} calls)"

    return [
        f"## A {big.resources:,}-resource chart and `/health` (one worker)",
        "",
        f"One client posts the chart ({big.body_mb:.1f} MB; the body limit raised so it is evaluated, "
        "not refused at the door) again and again with RS384 tokens, while wrk asks the same worker "
        "for `/health`.",
        "",
        "| what | value |",
        "|---|--:|",
        f"| answers (HTTP status × calls) | {answered} |",
        f"| call ms, p50 / slowest | {big.p50_ms:.0f} / {calls[-1]:.0f} (deadline {inputs.deadline * 1000:.0f}) |",
        f"| `/health` alone, p50 / p99 / max ms | {health(big.health_alone)} |",
        f"| `/health` during the big chart, p50 / p99 / max ms | {health(big.health_during)} |",
    ]


def _fallback(inputs: Inputs) -> list[str]:
    searches, fallback = inputs.searches, inputs.fallback
    slowest_key = max(searches, key=searches.__getitem__)
    slowest = searches[slowest_key]
    return [
        f"## Without prefetch (the FHIR server plus {inputs.plan.delay * 1000:.0f} ms per request)",
        "",
        "| what | ms |",
        "|---|--:|",
        f"| one search, the slowest of the {len(searches)} (`{slowest_key}`) | {slowest:.1f} |",
        f"| all {len(searches)} searches one after another (sum of medians) | {sum(searches.values()):.1f} |",
        f"| all {len(searches)} searches sent at once by a bare client (median) | {inputs.searches_at_once:.1f} |",
        f"| hook call, 1 client, RS384, p50 / p95 / p99 | {fallback.p50_ms:.1f} / {fallback.p95_ms:.1f} / "
        f"{fallback.p99_ms:.1f} |",
        f"| hook call p50 / slowest search | {fallback.p50_ms / slowest:.2f} |",
        "",
        f"{fallback.requests} calls, {fallback.non_2xx} non-2xx, {fallback.socket_errors} errors; cards: "
        f"{', '.join(inputs.fallback_topics)}.",
    ]


def _startup_memory(inputs: Inputs) -> list[str]:
    lines = [
        "## Start-up and memory",
        "",
        "| what | value |",
        "|---|--:|",
        f"| start-up, spawn to `/ready` 200 (1 worker, nothing else running; {len(inputs.startups)} runs) | "
        f"{' / '.join(f'{s:.2f}' for s in inputs.startups)} s |",
    ]
    for clients, servers in inputs.memory.items():
        lines += [
            f"| memory per worker after {clients} clients, {name} | {' / '.join(f'{mb:.0f}' for mb in rss)} MB |"
            for name, rss in servers.items()
        ]
    return lines

