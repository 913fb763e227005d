"""Prompt-lookup speculative decoding vs plain greedy decoding on llama.cpp: identical
tokens and decode speed, where the output copies the prompt (json_sample) and where it
does not (arith_sample). Run on a quiet machine; it writes its section of BENCHMARKS.md.

    PYTHONPATH=src python bench/efficiency_speculative.py --model smollm2-135m --n 20 --max-tokens 64
"""

from __future__ import annotations

import argparse

import numpy as np

from _common import machine, write_section
from llmassay.efficiency.speculative import compare_prompt_lookup
from llmassay.metrics import bootstrap_mean, proportion
from llmassay.models import resolve_model_path
from llmassay.tasks.loader import load_task


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=20, help="prompts per task")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--num-pred-tokens", type=int, default=10)
    ap.add_argument("--write", action="store_true", help="write the BENCHMARKS.md section")
    args = ap.parse_args()
    path = resolve_model_path(args.model)
    lines = [f"Machine: {machine()}. Model {args.model}, {args.n} prompts per task, {args.max_tokens} tokens, "
             f"num_pred_tokens={args.num_pred_tokens}. Speed-up: mean over prompts of plain time / lookup time "
             "(95% bootstrap CI).", "",
             "| task | identical greedy outputs | plain tok/s | lookup tok/s | speed-up |", "|---|---|---|---|---|"]
    for task in ("json_sample", "arith_sample"):
        prompts = [s.prompt for s in load_task(task).samples[: args.n]]
        runs = compare_prompt_lookup(path, prompts, args.max_tokens, args.num_pred_tokens)
        same = proportion([r.identical for r in runs])
        plain = np.mean([len(r.tokens_plain) / r.seconds_plain for r in runs])
        lookup = np.mean([len(r.tokens_lookup) / r.seconds_lookup for r in runs])
        speed = bootstrap_mean([r.seconds_plain / r.seconds_lookup for r in runs])
        lines.append(f"| {task} | {same.value:.0%} [{same.ci_low:.0%}, {same.ci_high:.0%}] (n={same.n}) | "
                     f"{plain:.1f} | {lookup:.1f} | {speed.value:.2f}× [{speed.ci_low:.2f}, {speed.ci_high:.2f}] |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("efficiency_speculative", "## Prompt-lookup speculative decoding\n\n" + text + "\n")


if __name__ == "__main__":
    main()
