#!/usr/bin/env bash
# Install everything the tests need (first run only), run the static checks (ruff, mypy --strict)
# and then the whole test suite; any failure fails the run (CI runs this).
# Extra arguments go to pytest, e.g. scripts/test.sh -k feedback, or scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
scripts/fhir-server.sh install   # the real FHIR server the integration tests start themselves
scripts/postgres.sh install      # the real PostgreSQL server the store tests start themselves
scripts/debian-packages.sh chromium wrk  # the browser of tests/test_browser.py, the benchmark's load
.venv/bin/ruff check .
.venv/bin/python -m mypy --strict cds_service
exec .venv/bin/python -m pytest "$@"
