"""Headless Debian Chromium driven by Playwright, for the browser test and the screenshot.

Playwright's own browser download (``playwright install``) is never used: machines here have
no route to it. ``scripts/debian-packages.sh chromium`` installs the distribution's chromium instead.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def launch(
    playwright: Playwright, user_data_dir: Path, width: int = 1280, height: int = 900
) -> BrowserContext:
    """A fresh Chromium profile in ``user_data_dir`` (one per run: no state carried over)."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        headless=True,
        viewport={"width": width, "height": height},
    )
