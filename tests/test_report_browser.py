"""The report in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): it loads offline with no console error and no request, every plot renders,
the sample browser filters, hostile model output stays inert text, and a screenshot of
it is not blank.

Skipped only where /usr/bin/chromium is absent and CI is unset; in CI these must run.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_report_runs import HOSTILE, run_dir

from llmassay.report.html import write_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

if not os.environ.get("CI") and not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is absent (apt-get install chromium); CI runs these", allow_module_level=True)
if not os.environ.get("CI"):
    pytest.importorskip("playwright", reason="playwright is in the [dev] extra")

from playwright.sync_api import Page, sync_playwright

pytestmark = pytest.mark.slow  # Chromium and a real model run


class Session:
    """One page with everything it did recorded: console messages, errors, requests, dialogs."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def open(self, html: Path) -> Page:
        self.page.goto(html.as_uri(), wait_until="load")
        return self.page

    def assert_quiet(self, html: Path) -> None:
        assert [c for c in self.console if c.startswith(("error", "pageerror", "warning"))] == []
        assert self.requests == [html.as_uri()]  # the page itself, nothing else
        assert self.dialogs == []


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    profile = tmp_path_factory.mktemp("chromium-profile")  # empty user-data-dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=FLAGS, headless=True,
            viewport={"width": 1280, "height": 900}, offline=True,
        )
        yield context
        context.close()


@pytest.fixture
def session(browser) -> Iterator[Session]:
    page = browser.new_page()
    yield Session(page)
    page.close()


def plots_rendered(page: Page) -> list[tuple[str, float, float]]:
    return page.eval_on_selector_all(
        "figure.plot",
        """figs => figs.map(f => { const s = f.querySelector('svg, canvas');
            const r = s ? s.getBoundingClientRect() : {width: 0, height: 0};
            return [f.dataset.plot, r.width, r.height, s ? s.querySelectorAll('path, rect, text').length : 0]; })""",
    )


def visible_rows(page: Page) -> list[list[str]]:
    return page.eval_on_selector_all(
        "#sample-rows tr", "rows => rows.map(r => Array.from(r.children).map(c => c.innerText))"
    )


def test_brittleness_report_loads_offline_plots_render_and_browser_filters(request, session):
    html = write_report(run_dir("smollm2", request))
    page = session.open(html)
    plots = plots_rendered(page)
    assert len(plots) == 6
    for title, width, height, marks in plots:
        assert width > 200 and height > 100 and marks > 10, title

    total = page.locator("#count").inner_text()
    assert total.endswith(" rows") and total.split()[0] == total.split()[2]
    n_total = int(total.split()[2])
    assert len(visible_rows(page)) == min(50, n_total)

    first_id = visible_rows(page)[0][1]
    page.fill("#q", first_id)
    rows = visible_rows(page)
    assert rows and all(first_id in r[1] for r in rows) and len(rows) < n_total
    assert page.locator("#count").inner_text() == f"{len(rows)} of {n_total} rows"
    page.fill("#q", "no sample has this text")
    assert visible_rows(page) == [] and page.locator("#count").inner_text() == f"0 of {n_total} rows"
    page.fill("#q", "")

    page.select_option("#f-variant", "options_rot1")
    rows = visible_rows(page)
    assert len(rows) == 5 and {r[2] for r in rows} == {"options_rot1"}
    page.select_option("#f-result", "incorrect")
    assert all(r[3] == "✗ incorrect" for r in visible_rows(page))
    page.select_option("#f-variant", "")
    page.select_option("#f-result", "correct")
    assert all(r[3] == "✓ correct" for r in visible_rows(page))
    page.select_option("#f-result", "")
    page.check("#f-brittle")
    assert all("brittle" in r[4] for r in visible_rows(page))
    session.assert_quiet(html)


def test_structured_report_plots_validity_and_filters_invalid_json(request, session):
    html = write_report(run_dir("structured", request))
    page = session.open(html)
    plots = plots_rendered(page)
    assert "JSON validity by mode" in [p[0] for p in plots]
    assert all(w > 200 and h > 100 and marks > 10 for _, w, h, marks in plots)
    page.check("#f-invalid")
    rows = visible_rows(page)
    assert all("invalid JSON" in r[4] for r in rows)
    session.assert_quiet(html)


def test_hostile_output_renders_as_text_fires_nothing_and_adds_no_element(request, session):
    html = write_report(run_dir("hostile", request))
    page = session.open(html)
    page.wait_for_timeout(300)  # give an injected handler (onerror) the chance to fire
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 2
    outputs = page.eval_on_selector_all("pre.output", "ps => ps.map(p => [p.textContent, p.children.length])")
    assert outputs and all(text == HOSTILE and children == 0 for text, children in outputs)
    page.locator("#sample-rows details").first.evaluate("d => d.open = true")
    prompt = page.locator("#sample-rows pre.prompt").first
    assert HOSTILE in prompt.text_content() and prompt.evaluate("p => p.children.length") == 0
    page.fill("#q", "onerror=alert(2)")
    assert len(visible_rows(page)) == len(outputs)
    assert page.locator("img").count() == 0
    session.assert_quiet(html)


def test_screenshot_is_saved_and_not_blank(request, session, tmp_path_factory):
    from PIL import Image, ImageStat

    html = write_report(run_dir("smollm2", request))
    page = session.open(html)
    folder = Path(os.environ.get("LLMASSAY_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.width == 1280 and image.height > 2000
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, plots and tables, not one flat colour
    assert max(ImageStat.Stat(image).stddev) > 20
    print(f"report screenshot: {shot}")
    session.assert_quiet(html)


def test_browser_shows_each_variants_pick_the_gold_and_a_labelled_mcnemar(session, tmp_path):
    """Issue #25 item 7, on scripted runs (no model): what a reader needs is on the page."""
    from test_first_hour import scripted_brittleness_run

    mmlu, arith = scripted_brittleness_run(tmp_path)
    html = write_report(mmlu, tmp_path / "mmlu.html")
    page = session.open(html)
    assert page.locator("th", has_text="McNemar p (accuracy vs canonical)").first.is_visible()
    page.select_option("#f-probe", "brittleness")
    rows = visible_rows(page)
    assert len(rows) == 48
    for row in rows:  # output cell: the picked label per variant, then the gold label
        output = row[5].split("\n")
        assert output[0].startswith("picked '") and " (slot 0) = option " in output[0]
        assert output[1].startswith("gold: '") and " = option " in output[1]
    session.assert_quiet(html)

    html = write_report(arith, tmp_path / "arith.html")
    session.requests.clear()
    page = session.open(html)
    golds = page.eval_on_selector_all("#sample-rows div.gold", "ds => ds.map(d => d.textContent)")
    targets = [json.loads(line)["target"] for line in next(arith.parent.glob("samples_arith_sample_*.jsonl")).read_text().splitlines()]
    assert golds == [f"gold: {t}" for t in targets] and len(golds) == 6
    session.assert_quiet(html)


def test_a_gzipped_sample_set_unpacks_and_browses_like_the_plain_one(session, tmp_path, monkeypatch):
    """Issue #25 item 9: large runs embed their rows gzipped; the page must show the same rows."""
    import llmassay.report.html as report_html
    from test_first_hour import scripted_brittleness_run

    mmlu, _ = scripted_brittleness_run(tmp_path)
    plain = write_report(mmlu, tmp_path / "plain.html")
    page = session.open(plain)
    expected = visible_rows(page)
    monkeypatch.setattr(report_html, "INLINE_LIMIT", 1000)
    packed = write_report(mmlu, tmp_path / "packed.html")
    assert "llmassay-samples-gzip" in packed.read_text()
    session.requests.clear()
    page = session.open(packed)
    page.wait_for_function("document.getElementById('count').textContent.endsWith(' rows')"
                           " && !document.getElementById('count').textContent.startsWith('unpacking')")
    assert page.locator("#count").inner_text() == "60 of 60 rows" and visible_rows(page) == expected
    page.select_option("#f-variant", "options_rot1")
    assert {r[2] for r in visible_rows(page)} == {"options_rot1"} and len(visible_rows(page)) == 12
    page.select_option("#f-variant", "")
    page.fill("#q", "picked '1'")  # the search reaches the unpacked rows: labels_numeric's picks only
    assert len(visible_rows(page)) == 12 and {r[2] for r in visible_rows(page)} == {"labels_numeric"}
    session.assert_quiet(packed)
