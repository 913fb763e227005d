"""Markdown tables for the README from a needle or position run's results file.

    python scripts/longctx_table.py runs/needle/results_*.json [runs/position/results_*.json ...]

Needle: the length × depth heatmap (share of needles found), accuracy by length with its
95 % CI, the effective length, the tokens requested / left to prefill / generated, and the
accuracy by needle kind (95 % CI over that kind's needles). Position: accuracy by gold position (Wilson 95 %), the closed-book
baseline, and the shape terms with their CIs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _ci(m: dict[str, Any], digits: int = 2) -> str:
    return f"{m['value']:.{digits}f} [{m['ci_low']:.{digits}f}, {m['ci_high']:.{digits}f}]"


def needle_table(metrics: dict[str, Any], details: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lengths, depths = details["lengths"], details["depths"]
    heat = details["heatmap"]["accuracy"]
    out = ["| length | " + " | ".join(f"{d:g}" for d in depths) + " | by length [95% CI] |",
           "| --- " * (len(depths) + 2) + "|"]
    for j, n in enumerate(lengths):
        cells = " | ".join("–" if v is None else f"{v:.2f}" for v in heat[j])
        out.append(f"| {n} | {cells} | {_ci(metrics[f'accuracy_by_length[{n}]'])} |")
    eff, cost = metrics["effective_length"], details["cost"]
    generated = sum(c["tokens"] - c["prompt_tokens"] for r in rows for c in r["cells"].values())
    kinds = ", ".join(f"{k} {_ci(v)} ({v['n']} needles)" for k, v in details["by_kind"].items())
    out += ["", f"Effective length **{eff['value']:.0f}** (point-estimate rule: {eff['ci_high']:.0f}); accuracy at "
            f"{lengths[0]}: {details['base_accuracy']:.2f}; overall {_ci(metrics['accuracy'])}. By kind: {kinds}. "
            f"Tokens: {cost['prompt_tokens']:,} prompt, {cost['prefill_tokens']:,} left to prefill after shared prefixes "
            f"({cost['shared_prefix_share']:.0%} shared), {generated:,} generated."]
    return "\n".join(out)


def position_table(metrics: dict[str, Any], details: dict[str, Any]) -> str:
    keys = details["positions"]
    book = f"{metrics['closed_book']['value']:.2f}" if "closed_book" in metrics else "–"
    out = ["| gold position | " + " | ".join(str(k) for k in keys) + " | closed book |",
           "| --- " * (len(keys) + 2) + "|",
           "| accuracy | " + " | ".join(f"{metrics[f'accuracy[{k}]']['value']:.2f}" for k in keys) + f" | {book} |",
           "| 95% CI | " + " | ".join(f"{metrics[f'accuracy[{k}]']['ci_low']:.2f}–{metrics[f'accuracy[{k}]']['ci_high']:.2f}"
                                      for k in keys) + " | |"]
    terms = ", ".join(f"{t} {_ci(metrics[t], 2)}" for t in ("u_term", "recency_slope", "first_gain", "last_gain")
                      if t in metrics)
    out += ["", f"{terms}; {details['prompt_tokens']:,} prompt tokens (with documents)."]
    return "\n".join(out)


def table(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    parts = []
    for task, by_probe in data["results"].items():
        for probe, metrics in by_probe.items():
            details = data["details"][task][probe]
            if probe == "needle":
                samples = path.parent / path.name.replace("results_", f"samples_{task}_").replace(".json", ".jsonl")
                rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]
                parts.append(needle_table(metrics, details, rows))
            elif probe == "position":
                parts.append(position_table(metrics, details))
    return f"`{data['model']['spec']}` — {task}, n = {metrics['accuracy']['n']} items\n\n" + "\n\n".join(parts)


if __name__ == "__main__":
    print("\n\n".join(table(Path(p)) for p in sys.argv[1:]))
