#!/usr/bin/env bash
# Install Debian packages the tests and the benchmark need (first run only), e.g.
#   scripts/debian-packages.sh chromium wrk
# chromium: the real browser of tests/test_browser.py, driven by Playwright (so `playwright
# install`, which downloads its own browser, is never needed); wrk: the benchmark's load.
# Other jobs may run apt-get at the same time: wait for the dpkg lock instead of failing.
set -euo pipefail
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo -n"; else
    echo "missing Debian packages (${missing[*]}); installing them needs root" >&2; exit 1
  fi
fi
echo "Installing ${missing[*]} (first run only)..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
