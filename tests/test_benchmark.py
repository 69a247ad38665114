"""The benchmark keeps working: a smoke run of ``python -m benchmarks`` prints and writes its
table, every load run clean. Its figures are reported, never asserted (DESIGN §7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def test_a_smoke_run_prints_and_writes_a_clean_table(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    table = out.read_text()
    assert table in run.stdout

    loads = [cells(line) for line in table.splitlines() if line.startswith(("| floor", "| service"))]
    assert [(row[0], row[1]) for row in loads] == [
        (server, clients)
        for clients in ("1", "4")
        for server in ("floor", "service, JWT off", "service, JWT on")
    ]
    for row in loads:
        assert float(row[2]) > 0, row  # requests per second
        assert (row[-2], row[-1]) == ("0", "0"), row  # no non-2xx answer, no socket error

    fallback = next(line for line in table.splitlines() if line.startswith("| hook call p50 / slowest"))
    assert float(cells(fallback)[1]) > 0
    calls = next(line for line in table.splitlines() if " calls, " in line)
    assert "0 non-2xx, 0 errors" in calls
    assert "start-up, spawn to `/ready`" in table and "memory per worker" in table
