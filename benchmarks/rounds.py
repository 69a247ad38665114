"""A/B alternation: every contender runs once per round, in an order rotated each round, so a
burst of load from the machine's other users falls on all of them alike; ratios are taken
within a round and reported as the median of the rounds with their range."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .load import LoadResult, Tokens, drive
from .servers import Server

GUESSED_RATE = 300.0  # calls/s, for a first run's token count; a short count is run again


@dataclass(frozen=True)
class Contender:
    """One thing measured: a server, the URL driven and the tokens it needs (if any)."""

    label: str
    server: Server
    url: str
    tokens: Tokens | None = None


@dataclass(frozen=True)
class Run:
    what: str
    """What the run measured: ``hook`` (the rounds), ``scaling-<n>``, ``health``..."""
    label: str
    round: int
    result: LoadResult


class Driver:
    """Runs wrk against contenders, with single-use tokens sized from the rates seen so far."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.bodies: list[Path] = []
        self.runs: list[Run] = []
        self._rates: dict[tuple[str, int], float] = {}
        self._began = time.perf_counter()
        self._progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))

    def alternate(
        self, contenders: Sequence[Contender], clients: int, rounds: int, seconds: float, warmup: float,
        *, what: str = "hook", bodies: Sequence[Path] | None = None,
    ) -> list[Run]:
        """Each contender ``rounds`` times (after one unmeasured warm-up each when ``warmup``)."""
        if warmup:
            for contender in contenders:
                self.measure(contender, clients, warmup, bodies)
        measured = []
        for number in range(rounds):
            shift = number % len(contenders)
            for contender in [*contenders[shift:], *contenders[:shift]]:
                result = self.measure(contender, clients, seconds, bodies)
                measured.append(Run(what, contender.label, number, result))
        self.runs += measured
        return measured

    def measure(
        self, contender: Contender, clients: int, seconds: float, bodies: Sequence[Path] | None = None
    ) -> LoadResult:
        bodies = list(bodies if bodies is not None else self.bodies)
        self.note(f"{contender.label}, {clients} clients, {seconds:g} s")
        tokens = contender.tokens
        if tokens is None:
            return self._drive(contender, clients, seconds, bodies, None)
        needed = int(self._rate(contender.label, clients) * (seconds + 1) * 1.5) + clients + 20
        while True:
            path = tokens.file(needed)
            result = self._drive(contender, clients, seconds, bodies, path)
            tokens.spent(min(needed, result.requests + result.socket_errors + clients))
            path.unlink()
            if not tokens.single_use or result.requests + clients < needed:
                break
            needed *= 2  # tokens may have run out (and been sent again): run again with more
        self._rates[contender.label, clients] = result.per_second
        return result

    def note(self, what: str) -> None:
        """A line of progress on stderr, with the seconds since the benchmark began."""
        self._progress(f"[{time.perf_counter() - self._began:5.0f} s] {what}")

    def _rate(self, label: str, clients: int) -> float:
        if (label, clients) in self._rates:
            return self._rates[label, clients]
        seen = [rate for (name, _), rate in self._rates.items() if name == label]
        return 2 * max(seen) if seen else GUESSED_RATE

    def _drive(
        self, contender: Contender, clients: int, seconds: float, bodies: list[Path], tokens: Path | None
    ) -> LoadResult:
        try:
            return drive(contender.url, clients, seconds, bodies, tokens)
        except RuntimeError as error:
            server = contender.server
            state = "running" if server.process.poll() is None else f"exited ({server.process.returncode})"
            raise RuntimeError(
                f"{error}\n{server.name} is {state}; the end of its log:\n{server.log.read_text()[-3000:]}"
            ) from error


@dataclass(frozen=True)
class Spread:
    """The median of per-round figures, with their lowest and highest."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def text(self, digits: int = 2) -> str:
        if self.low == self.high:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} [{self.low:.{digits}f}–{self.high:.{digits}f}]"


def per_round(runs: Sequence[Run], label: str, clients: int) -> dict[int, LoadResult]:
    return {run.round: run.result for run in runs if run.label == label and run.result.clients == clients}


def ratio(
    runs: Sequence[Run], mine: str, floor: str, clients: int, figure: Callable[[LoadResult], float]
) -> Spread | None:
    """``figure`` of ``mine`` over that of ``floor`` in each round (same clients), their spread."""
    a, b = per_round(runs, mine, clients), per_round(runs, floor, clients)
    values = [figure(a[n]) / figure(b[n]) for n in sorted(a.keys() & b.keys()) if figure(b[n]) > 0]
    return Spread.of(values) if values else None


def spread(runs: Sequence[Run], label: str, clients: int, figure: Callable[[LoadResult], float]) -> Spread | None:
    values = [figure(result) for result in per_round(runs, label, clients).values()]
    return Spread.of(values) if values else None
