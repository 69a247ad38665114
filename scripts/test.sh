#!/usr/bin/env bash
# Install everything the tests need (first run only) and run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k feedback
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
scripts/fhir-server.sh install   # the real FHIR server the integration tests start themselves
scripts/postgres.sh install      # the real PostgreSQL server the store tests start themselves
scripts/debian-packages.sh chromium wrk  # the browser of tests/test_browser.py, the benchmark's load
exec .venv/bin/python -m pytest "$@"
