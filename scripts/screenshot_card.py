"""Screenshot the summary card of a report (README's docs/summary-card.png).

    .venv/bin/python scripts/screenshot_card.py runs/demo/report.html docs/summary-card.png

Drives Debian's /usr/bin/chromium through Playwright, offline, as the report tests do.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def main(report: str, out: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.goto(Path(report).resolve().as_uri())
        page.locator("#report-card").screenshot(path=out)
        browser.close()
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
