#!/usr/bin/env bash
# Refresh the hashed lock files from pyproject.toml (run after changing a dependency, or to take
# upstream fixes; commit both files):
#   requirements.lock       the service (+ the `postgres` extra) and what builds it (hatchling)
#   requirements-test.lock  the same pins plus the `test` extra
# pip-tools' pip-compile, in its own environment under .data/lock-venv, resolves against PyPI
# only (this machine's pip settings and local wheel folders are ignored, so the pins and hashes
# are PyPI's), for the Python running it: use Python 3.11 on Linux, as the image and CI do.
# Extra arguments go to both pip-compile runs, e.g. scripts/lock.sh --upgrade-package httpx
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.data/lock-venv
INDEX=https://pypi.org/simple
pypi_only() { env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null "$@"; }

if [ ! -x "$VENV/bin/pip-compile" ]; then
  python3 -m venv "$VENV"
  pypi_only "$VENV/bin/pip" install -q --index-url "$INDEX" "pip-tools>=7.4,<8"
fi
compile() {
  pypi_only "$VENV/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
    --index-url "$INDEX" --no-emit-index-url --all-build-deps "$@"
}
compile --extra postgres --output-file requirements.lock "${@}" pyproject.toml
# Constrained to the service's pins, so the tests run exactly what the image ships.
compile --extra postgres --extra test --constraint requirements.lock \
  --output-file requirements-test.lock "${@}" pyproject.toml
