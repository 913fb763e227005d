"""Markdown tables for README's "Structured output" section from a results file.

    python scripts/structured_table.py runs/j/results_*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def ci(m: dict[str, Any], digits: int = 3) -> str:
    return f"{m['value']:.{digits}f} [{m['ci_low']:.{digits}f}, {m['ci_high']:.{digits}f}]"


def tables(results: dict[str, Any]) -> str:
    out = []
    for task, probes in results["details"].items():
        details = probes.get("structured")
        if not details:
            continue
        n = results["tasks"][task]["n_samples"]
        out.append(f"**{results['model']['spec']}** on `{task}`, n = {n}, prompt format `{details.get('prompt_format')}`:\n")
        out.append("| mode | parse-valid | schema-valid | schema-valid − strict (paired) | field accuracy "
                   "| output tokens / item | latency s / item | retries / item |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for row in details["modes"]:
            retries = ci(row["retries"], 2) if "retries" in row else "—"
            gain = ci(row["schema_valid_gain_vs_strict"]) if "schema_valid_gain_vs_strict" in row else "—"
            out.append(
                f"| {row['mode']} | {ci(row['parse_valid'])} | {ci(row['schema_valid'])} | {gain} | {ci(row['field_acc'])} "
                f"| {ci(row['tokens'], 1)} | {ci(row['latency_s'], 2)} | {retries} |"
            )
        for row in details.get("relaxed", []):  # constrained: one line per keyword no grammar enforces
            out.append(f"\nconstraint_relaxed: '{row['keyword']}' at {row['at']} on {row['items']} items "
                       f"({row['schema_valid']} still schema-valid; {row['why']}): {row['item ids']}")
        modes = [r["mode"] for r in details["modes"]]
        taxonomy = [r for r in details["taxonomy"] if r["outputs"] or any(r[f"failed[{m}]"] for m in modes)]
        if taxonomy:
            out.append("\n| failure class | all free outputs | " + " | ".join(f"failed: {m}" for m in modes) + " |")
            out.append("| --- | --- | " + " | ".join("---" for _ in modes) + " |")
        for row in taxonomy:
            cells = [str(row["outputs"])] + [str(row[f"failed[{m}]"]) for m in modes]
            out.append(f"| {row['class']} | " + " | ".join(cells) + " |")
        if len(details.get("instructions", [])) > 1:
            out.append("\n| instruction wording | parse-valid (strict) | schema-valid (extract) |")
            out.append("| --- | --- | --- |")
            for row in details["instructions"]:
                out.append(
                    f"| {row['wording']}: {row['instruction']} | {ci(row['parse_valid[strict]'])} "
                    f"| {ci(row['schema_valid[extract]'])} |"
                )
            metrics = results["results"][task]["structured"]
            spread, null = metrics.get("instruction_spread"), metrics.get("instruction_spread_null")
            if spread:
                expected = f"; expected with no effect (wordings shuffled within items): {ci(null)}" if null else ""
                out.append(f"\nInstruction spread (best − worst schema-valid, re-picked in each resample): "
                           f"{ci(spread)}{expected}.")
        engine = results["engine"]
        out.append(
            f"\nWall time {results['wall_time_s']:.0f} s; {engine['requests']:,} generation requests, "
            f"{engine['unique']:,} unique.\n"
        )
    return "\n".join(out)


def main(paths: list[str]) -> None:
    for path in paths:
        print(tables(json.loads(Path(path).read_text())))


if __name__ == "__main__":
    main(sys.argv[1:])
