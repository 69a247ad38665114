#!/usr/bin/env bash
# Install Debian's chromium (first run only) for the browser test; Playwright drives it, so
# `playwright install` (which downloads its own browser) is never needed. Other jobs may run
# apt-get at the same time: wait for the dpkg lock instead of failing.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo -n"; else
    echo "chromium is missing and installing it needs root (apt-get install chromium)" >&2; exit 1
  fi
fi
echo "Installing chromium for the browser test (first run only)..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q chromium
