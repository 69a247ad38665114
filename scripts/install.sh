#!/usr/bin/env bash
# The project's environment .venv from the hashed lock files (pip checks every file against its
# sha256), then the project itself, editable, with nothing more fetched:
#   scripts/install.sh        requirements.lock       what the service needs (scripts/run.sh)
#   scripts/install.sh test   requirements-test.lock  that plus the test tools (scripts/test.sh)
# Does nothing when the lock file and pyproject.toml are as at the last install. The lock files
# are made by scripts/lock.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=requirements.lock
[ "${1:-}" = test ] && lock=requirements-test.lock
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed-$lock"
want="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
[ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && exit 0
started=$SECONDS
echo "Installing $(grep -c '^[a-z0-9]' "$lock") locked packages ($lock) into .venv" \
  "(about a minute the first time)..."
pip=(.venv/bin/python -m pip --disable-pip-version-check --no-input -q)
"${pip[@]}" install --require-hashes -r "$lock"
"${pip[@]}" install --no-deps --no-build-isolation -e .
echo "$want" >"$stamp"
echo "Installed in $((SECONDS - started)) s."
