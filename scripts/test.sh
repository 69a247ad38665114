#!/usr/bin/env bash
# Install everything the tests need (first run only), run the static checks (ruff, mypy --strict)
# and then the whole test suite; any failure fails the run (CI runs this).
# Extra arguments go to pytest, e.g. scripts/test.sh -k feedback, or scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test          # .venv from requirements-test.lock (hashes checked)
scripts/fhir-server.sh install   # the real FHIR server the integration tests start themselves
scripts/postgres.sh install      # the real PostgreSQL server the store tests start themselves
# The browser of tests/test_browser.py, the benchmark's load, the proxy of tests/test_topology.py,
# and what tests/test_image.py builds and starts the container image with.
scripts/debian-packages.sh chromium wrk nginx buildah debootstrap
.venv/bin/ruff check .
.venv/bin/python -m mypy --strict cds_service
exec .venv/bin/python -m pytest "$@"
