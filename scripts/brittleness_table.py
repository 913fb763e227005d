"""Print a brittleness run's headline numbers as a markdown table (for the README).

    python scripts/brittleness_table.py runs/b/results_*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def main(path: str) -> None:
    doc = json.loads(Path(path).read_text())
    model = doc["model"]["spec"]
    for task, probes in doc["results"].items():
        metrics = probes["brittleness"]
        details = doc["details"][task]["brittleness"]
        print(f"**{model}** on `{task}`, n = {metrics['acc[canonical]']['n']}, {details['n_variants']} prompts "
              f"(canonical + {details['n_variants'] - 1} perturbations), scoring `{details['scoring']}`:\n")
        print("| variant | accuracy [95 % CI] | flip rate vs canonical | McNemar p |")
        print("| --- | --- | --- | --- |")
        for row in details["variants"]:
            name = row["variant"]
            flip = fmt(metrics[f"flip_rate[{name}]"]) if f"flip_rate[{name}]" in metrics else "—"
            p = f"{row['mcnemar_p']:.3f}" if "mcnemar_p" in row else "—"
            print(f"| {name} | {fmt(metrics[f'acc[{name}]'])} | {flip} | {p} |")
        print()
        print("| summary | value [95 % CI] |")
        print("| --- | --- |")
        keys = ["flip_rate_mean", "spread", "spread_null", "sensitivity_mean", "pss", "posix", "acc_under_permutation",
                "ensemble_majority_acc", "ensemble_prob_acc"]
        keys += sorted(k for k in metrics if k.startswith("position_share"))
        for key in keys:
            if key in metrics:
                print(f"| {key} | {fmt(metrics[key])} |")
        ens = details["ensembling"]
        print(f"| single-template accuracy SD over variants | {ens['single_template_acc_sd']:.3f} |")
        half = [k for k in ens if k.endswith("_acc_sd") and k.startswith("ensemble")][0]
        print(f"| {half.replace('_', ' ')} (random subsets) | {ens[half]:.3f} |")
        print(f"| batch sizes 1 vs 8, max abs Δ loglik | {details['batch_invariance']['max_abs_delta']:.2e} |")
        spread = details["spread"]
        print(f"\nSpread is between `{spread['between'][0]}` and `{spread['between'][1]}` "
              f"(permutation p = {spread['p_value']:.3f} against the spread expected with no effect). "
              f"Wall time {doc['wall_time_s']:.0f} s; {doc['engine']['requests']:,} requests, "
              f"{doc['engine']['unique']:,} unique.\n")


if __name__ == "__main__":
    main(sys.argv[1])
