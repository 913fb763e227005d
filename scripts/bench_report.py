"""Report size (and, with --time, build and open time) for a large brittleness run.

Issue #25 item 9: a 14k-item run (full MMLU) with accuracy and the 14-prompt brittleness
probe must give a report under 50 MB that opens in under 3 s. No model is needed: the
281 bundled mmlu_sample items are evaluated on a deterministic scripted backend (its
answers are a hash of the request, so rows look like a real run's), then their sample
rows are repeated with new ids up to --items, as a run on that many items would write.

    python scripts/bench_report.py --items 14042 --out /tmp/bench-report          # size only
    python scripts/bench_report.py --items 14042 --out /tmp/bench-report --time   # + build and open times

--time opens the report in headless Chromium (/usr/bin/chromium, Playwright) and measures
until the sample browser shows its rows. Timings are only meaningful on an idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from llmassay.evaluation import RunConfig, evaluate
from llmassay.report.html import write_report
from llmassay.types import Generation, LoglikelihoodResult


class HashedBackend:
    """Log-likelihoods and generations fixed by a hash of the request: no model, real rows."""

    name = "bench/hashed"

    def loglikelihood(self, reqs):
        return [LoglikelihoodResult(-(_digest(r.context, r.continuation) % 5000) / 1000, False, 1, 1) for r in reqs]

    def generate(self, reqs):
        return [Generation(" A", 1, 1, "stop") for _ in reqs]

    def tokenize(self, text):
        return list(text.encode())

    def fingerprint(self):
        return {"backend": self.name}


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def synthesise(out: Path, items: int) -> Path:
    """A run directory whose samples file holds `items` items' rows of both probes."""
    done = evaluate(RunConfig(model="bench/hashed", tasks=["mmlu_sample"], probes=["accuracy", "brittleness"],
                              output_path=str(out), use_cache=False), backend=HashedBackend())
    (samples,) = done.sample_paths
    base = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    position = {item: i for i, item in enumerate(dict.fromkeys(row["id"] for row in base))}
    n_base = len(position)
    with samples.open("w", encoding="utf-8") as handle:
        for copy in range(-(-items // n_base)):
            for row in base:
                if copy * n_base + position[row["id"]] < items:
                    handle.write(json.dumps({**row, "id": f"{row['id']}#{copy}"}, ensure_ascii=False) + "\n")
    results = json.loads(done.results_path.read_text(encoding="utf-8"))
    results["tasks"]["mmlu_sample"]["n_samples"] = items
    done.results_path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return done.results_path


def open_seconds(html: Path) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        page = browser.new_page(bypass_csp=True)  # the report forbids eval; the wait predicate needs it
        start = time.perf_counter()
        page.goto(html.as_uri(), wait_until="load")
        page.wait_for_function("/^\\d+ of \\d+ rows$/.test(document.getElementById('count').textContent)",
                               timeout=120_000)
        seconds = time.perf_counter() - start
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=14042, help="items in the run (full MMLU test: 14,042)")
    parser.add_argument("--out", default="runs/bench-report", help="run directory to write")
    parser.add_argument("--time", action="store_true", help="also time the build and the page opening")
    args = parser.parse_args()
    results = synthesise(Path(args.out), args.items)
    start = time.perf_counter()
    html = write_report(results)
    build_s = time.perf_counter() - start
    line = f"items {args.items:,} · report {html.stat().st_size / 1e6:.1f} MB ({html})"
    if args.time:
        line += f" · build {build_s:.1f} s · open {open_seconds(html):.1f} s"
    print(line)


if __name__ == "__main__":
    main()
