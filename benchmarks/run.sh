#!/usr/bin/env bash
# Install what the benchmark needs (first run only) and run it; arguments go to
# `python -m benchmarks` (e.g. --smoke, --clients 1,16 --seconds 5). Writes benchmarks/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
scripts/fhir-server.sh install
scripts/debian-packages.sh wrk
exec .venv/bin/python -m benchmarks "$@"
