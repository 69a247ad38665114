"""A very large chart must be answered or refused within the deadline without stalling the
worker's other calls: while one client posts a 10,000-resource chart again and again to a
one-worker service, wrk measures ``/health`` on that same worker."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from .load import LoadResult, Signer, drive


@dataclass(frozen=True)
class BigChartResult:
    resources: int
    body_mb: float
    statuses: Counter[int]
    call_ms: list[float]
    health_alone: LoadResult
    health_during: LoadResult

    @property
    def clean(self) -> bool:
        """Every call answered (cards, 412) or refused (413), never a 5xx or a dropped connection."""
        return bool(self.call_ms) and all(status in {200, 412, 413} for status in self.statuses) \
            and self.health_alone.clean and self.health_during.clean

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.call_ms)


def measure(
    url: str, health_url: str, body: Path, resources: int, signer: Signer, alg: str, seconds: float
) -> BigChartResult:
    content = body.read_bytes()
    health_alone = drive(health_url, 1, seconds, [], None)
    statuses: Counter[int] = Counter()
    call_ms: list[float] = []
    with ThreadPoolExecutor(1) as pool, httpx.Client(timeout=30) as client:
        during = pool.submit(drive, health_url, 1, seconds, [], None)
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop or not call_ms:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {signer.token(alg, url)}"}
            began = time.perf_counter()
            try:
                statuses[client.post(url, content=content, headers=headers).status_code] += 1
            except httpx.TransportError:
                statuses[0] += 1  # a dropped connection: not an answer
            call_ms.append((time.perf_counter() - began) * 1000)
        health_during = during.result()
    return BigChartResult(resources, len(content) / 2**20, statuses, call_ms, health_alone, health_during)
