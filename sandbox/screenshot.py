"""Render the README's picture of the sandbox page: ``python -m sandbox.screenshot``.

Run it while ``scripts/run.sh`` is up (or give ``--url``); it opens the page in headless
Chromium, opens a patient, drafts an order and saves the whole page as a PNG. Needs the
``test`` extra (Playwright) and ``scripts/debian-packages.sh chromium``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from .browser import launch

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.screenshot", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8081/", help="the sandbox page")
    parser.add_argument("--patient", default="aimss-severe-bpi")
    parser.add_argument("--draft", default="draft-duloxetine-tramadol", help="order to draft ('' for none)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "sandbox.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = launch(playwright, Path(profile), width=1280, height=900)
        page = context.new_page()
        page.goto(args.url)
        page.wait_for_selector('#services[data-state="ready"]', timeout=15_000)
        page.click(f'.patient[data-patient-id="{args.patient}"]')
        page.wait_for_selector(f'#pv-cards[data-state="done"][data-patient="{args.patient}"]', timeout=15_000)
        if args.draft:
            page.select_option("#draft-select", args.draft)
            page.click("#draft-button")
            page.wait_for_selector('#os-cards[data-state="done"]', timeout=15_000)
        page.screenshot(path=str(args.out), full_page=True)
        context.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
