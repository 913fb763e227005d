"""Re-run the counterfactual probe's analysis on a finished run's stored rows, without the model.

    python scripts/counterfactual_reanalyse.py RUN/results_*.json OUT.json

The rows (per template: each filled value's sentiment or P(first choice)) are what the model
produced; the analysis (gaps, CIs, the exact paired test and Holm's correction) is code. When
the flag rule changes, this rewrites the results file's counterfactual metrics, details and
summary line with the current analysis, so the README tables follow the rule, not the model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llmassay.probes.base import ProbeConfig
from llmassay.probes.counterfactual import CounterfactualProbe
from llmassay.tasks.loader import load_task

PROBE, TASK = "counterfactual", "counterfactual_sample"


def reanalyse(results_path: Path) -> dict:
    results = json.loads(results_path.read_text())
    stamp = results_path.stem.removeprefix("results_")
    samples = results_path.with_name(f"samples_{TASK}_{stamp}.jsonl")
    rows = [r for line in samples.read_text().splitlines() if (r := json.loads(line)).get("probe") == PROBE]
    probe, given = CounterfactualProbe(), results["probes"][PROBE]["options"]
    opts = probe.options({k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})
    cfg = ProbeConfig(results["config"]["seed"], results["config"]["temperature"], tuple(given.items()))
    task = load_task(TASK)
    analysis = probe.analyse(task, rows, opts, cfg)
    results["results"][TASK][PROBE] = {k: m.as_dict() if hasattr(m, "as_dict") else vars(m)
                                       for k, m in analysis.metrics.items()}
    results["details"][TASK][PROBE] = analysis.details
    line = probe.summary(task, analysis, opts)
    results["summary"] = [s for s in results["summary"] if s["probe"] != PROBE] + ([line.as_dict()] if line else [])
    return results


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(reanalyse(Path(sys.argv[1])), indent=1, default=str))
