"""Prompt-lookup speculative decoding vs plain greedy decoding on llama.cpp: identical
tokens and decode speed, where the output copies the prompt (json_sample) and where it
does not (arith_sample). Run on a quiet machine; it writes its section of docs/benchmarks.md.

    PYTHONPATH=src python bench/efficiency_speculative.py --model smollm2-135m --n 20 --max-tokens 64 --repeats 3
"""

from __future__ import annotations

import argparse

import numpy as np

from _common import machine, write_section
from llmassay.efficiency.speculative import compare_prompt_lookup, per_prompt_speedup
from llmassay.models import resolve_model_path
from llmassay.tasks.loader import load_task


def _spread(values: list[float], fmt: str = ".1f") -> str:
    return f"{np.median(values):{fmt}} [{min(values):{fmt}}–{max(values):{fmt}}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=20, help="prompts per task")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--num-pred-tokens", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="whole comparisons (models reloaded each time)")
    ap.add_argument("--write", action="store_true", help="write the docs/benchmarks.md section")
    args = ap.parse_args()
    path = resolve_model_path(args.model)
    lines = [f"Machine: {machine()}; {args.threads} thread(s), run alone on one core. Model {args.model}, {args.n} "
             f"prompts per task, at most {args.max_tokens} tokens, greedy, num_pred_tokens={args.num_pred_tokens}. "
             f"Tokens/s: all tokens / all seconds of a repeat, median over {args.repeats} repeats [min–max]; "
             "speed-up: plain / lookup seconds per generated token, each averaged over the repeats of a prompt, "
             "mean over prompts with a 95% bootstrap CI over prompts (repeats of one greedy decode are "
             "near-duplicates, not independent samples). Identical: greedy token streams equal token for token in "
             "every repeat (Wilson CI over prompts); where they differ the outputs differ in length, so the speed-up "
             "is per token, not per answer.", "",
             "| task | identical greedy outputs | plain tok/s | prompt-lookup tok/s | speed-up per token |",
             "|---|---|---|---|---|"]
    for task in ("json_sample", "arith_sample"):
        prompts = [s.prompt for s in load_task(task).samples[: args.n]]
        repeats = [compare_prompt_lookup(path, prompts, args.max_tokens, args.num_pred_tokens, n_threads=args.threads)
                   for _ in range(args.repeats)]
        summary = per_prompt_speedup(repeats)
        same, speed = summary.identical, summary.speedup
        plain = [sum(len(r.tokens_plain) for r in rs) / sum(r.seconds_plain for r in rs) for rs in repeats]
        lookup = [sum(len(r.tokens_lookup) for r in rs) / sum(r.seconds_lookup for r in rs) for rs in repeats]
        skipped = f" ({len(summary.skipped)} prompt(s) with no token skipped)" if summary.skipped else ""
        lines.append(f"| {task} | {same.value:.0%} [{same.ci_low:.0%}, {same.ci_high:.0%}] (n={same.n}) | "
                     f"{_spread(plain)} | {_spread(lookup)} | {speed.value:.2f}× [{speed.ci_low:.2f}, "
                     f"{speed.ci_high:.2f}] (n={speed.n} prompts){skipped} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("efficiency_speculative", "## Prompt-lookup speculative decoding\n\n" + text + "\n")


if __name__ == "__main__":
    main()
