"""The benchmark keeps working: a smoke run of ``python -m benchmarks`` prints and writes its
tables, every load run clean. Its figures are reported, never asserted (DESIGN §7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def section(table: str, title: str) -> list[list[str]]:
    """The body rows of the first table under the heading that starts with ``title``."""
    lines = table.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(f"## {title}"))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("|-"):
            rows.append(cells(line))
    return rows[1:]  # without the header


def test_a_smoke_run_prints_and_writes_clean_tables(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    table = out.read_text()
    assert table in run.stdout

    runs = section(table, "Every run")
    hooks = [(row[2], row[3]) for row in runs if row[0] == "hook"]
    contenders = ["floor (a)", "floor (b) RS384", "floor (b) ES384", "floor (c)",
                  "service, JWT off", "service RS384", "service ES384"]
    assert sorted(hooks) == sorted((name, clients) for clients in ("1", "4") for name in contenders)
    assert {row[0] for row in runs} >= {"scaling-100", "scaling-400", "health, alone",
                                        "health, big chart", "no prefetch"}
    for row in runs:
        assert float(row[4]) > 0, row  # calls per second
        assert (row[9], row[10]) == ("0", "0"), row  # no non-2xx answer, no socket error
        before, after = row[11].split(" → ")  # the machine's load, recorded around each run
        assert float(before) >= 0 and float(after) >= 0
    assert f"{len(runs)} load runs; 0 with a non-2xx answer" in table

    targets = [row[0] for row in section(table, "Against the targets")]
    for words in ("p50 at 1 client", "throughput at 4 clients", "µs per resource", "linear to",
                  "10,000-resource chart", "`/health`", "without prefetch", "start-up", "MB per worker"):
        assert sum(words in target for target in targets) >= 1, (words, targets)
    assert sum("ES384" in target for target in targets) == 2  # beside RS384, not instead

    scaling = section(table, "Scaling")
    assert [row[0] for row in scaling] == ["100", "400"]
    answers = next(row for row in section(table, "A 10,000-resource") if row[0].startswith("answers"))
    assert all(part.split(" ×")[0] in {"200", "412", "413"} for part in answers[1].split(", ")), answers
