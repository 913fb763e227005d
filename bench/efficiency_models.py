"""Efficiency figures for the bundled models, repeated: llama-bench's pp512 / tg128 (prompt
processing of 512 random tokens, generation of 128 tokens one at a time, from llama.cpp's
perf counters) and the efficiency probe on real prompts (TTFT, prefill and decode
tokens/s, E2E, CPU time, estimated energy, peak RSS). Each repeat is a fresh process; the
table gives the median over repeats and the min–max spread.

Run alone on one core (`bench/quietcore.sh` on the project machine), one thread:

    PYTHONPATH=src python bench/efficiency_models.py --models smollm2-135m,gemma3-270m --repeats 3 --write
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import machine, write_section

PROBE_FIGURES = (("prefill_tps", "prefill tok/s", 1), ("decode_tps", "decode tok/s", 1),
                 ("ttft_s[p50]", "TTFT p50 ms", 1000), ("e2e_s[p50]", "E2E p50 ms", 1000),
                 ("energy_wh_per_1k", "Wh / 1k answers (est.)", 1), ("peak_rss_mb", "peak RSS MB", 1))


def llama_bench(model: str, threads: int, n_prompt: int = 512, n_gen: int = 128) -> dict[str, float]:
    """pp and tg tokens/s as llama-bench defines them (random tokens; one batch of n_prompt;
    n_gen single-token decodes), timed by the wall clock around `Llama.eval` (llama_decode
    plus reading one row of logits; Python's share is well under 1 % of a decode here).
    The first of two passes of each is the warm-up."""
    import llama_cpp

    from llmassay.models import resolve_model_path

    from llmassay.backends.llama_load import open_llama

    llm = open_llama(str(resolve_model_path(model)), n_threads=threads, n_ctx=n_prompt + n_gen + 8, n_batch=n_prompt,
                     verbose=False, seed=0)
    rng = np.random.default_rng(0)
    vocab = llm.n_vocab()
    prompt = rng.integers(100, vocab - 100, n_prompt).tolist()
    gen = rng.integers(100, vocab - 100, n_gen).tolist()
    out = {}
    for name, tokens in (("pp", [prompt]), ("tg", [[t] for t in gen])):
        for _ in range(2):  # the first is the warm-up
            llm.reset()
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm._ctx.ctx), True)
            start = time.perf_counter()
            for batch in tokens:
                llm.eval(batch)
            seconds = time.perf_counter() - start
        out[name] = sum(len(b) for b in tokens) / seconds
    llm.close()
    return out


def probe_run(model: str, threads: int, limit: int, out: Path) -> dict:
    from rich.console import Console

    from llmassay.evaluation import RunConfig, evaluate

    cfg = RunConfig(model=f"llamacpp/{model}", tasks=["arith_sample"], probes=["efficiency"], limit=limit,
                    model_args={"n_threads": threads}, use_cache=False, output_path=str(out),
                    probe_options={"efficiency.max_tokens": 32, "efficiency.warmup": 2})
    result = evaluate(cfg, console=Console(stderr=True, quiet=True))
    metrics = result.results["results"]["arith_sample"]["efficiency"]
    energy = result.results["details"]["arith_sample"]["efficiency"]["energy"]
    return {**metrics, "energy_method": "; ".join(energy["method"])}


def child(args: argparse.Namespace) -> None:
    """One repeat of one model, in its own process: prints one JSON line."""
    bench = llama_bench(args.child, args.threads)
    if args.no_probe:
        print(json.dumps({"bench": bench, "probe": {}, "ci": {}, "method": ""}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        probe = probe_run(args.child, args.threads, args.limit, Path(tmp))
    print(json.dumps({"bench": bench, "probe": {k: probe[k]["value"] for k, _, _ in PROBE_FIGURES if k in probe},
                      "ci": {k: [probe[k]["ci_low"], probe[k]["ci_high"]] for k, _, _ in PROBE_FIGURES if k in probe},
                      "method": probe["energy_method"]}))


def _cell(values: list[float], scale: float) -> str:
    v = np.asarray(values) * scale
    digits = 0 if np.median(v) >= 100 else 1 if np.median(v) >= 10 else 2
    return f"{np.median(v):.{digits}f} [{v.min():.{digits}f}–{v.max():.{digits}f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=30, help="arith_sample prompts per probe run")
    ap.add_argument("--no-probe", action="store_true", help="pp512/tg128 only (e.g. quantised variants)")
    ap.add_argument("--labels", default=None, help="comma-separated row labels (default: the model names)")
    ap.add_argument("--section", default="efficiency_models", help="docs/benchmarks.md section name")
    ap.add_argument("--title", default="Efficiency of the bundled models")
    ap.add_argument("--write", action="store_true", help="write the docs/benchmarks.md section")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    labels = dict(zip(models, [x.strip() for x in args.labels.split(",")] if args.labels else models))
    runs: dict[str, list[dict]] = {m: [] for m in models}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for r in range(args.repeats):
        for m in models:  # models interleaved across repeats: a slow spell hits both
            line = subprocess.run([sys.executable, __file__, "--child", m, "--threads", str(args.threads),
                                   "--limit", str(args.limit), *(["--no-probe"] if args.no_probe else [])],
                                  check=True, capture_output=True, text=True).stdout
            runs[m].append(json.loads(line.strip().splitlines()[-1]))
            print(m, r, runs[m][-1], file=sys.stderr)
    figures = () if args.no_probe else PROBE_FIGURES
    head = ["model", "pp512 tok/s", "tg128 tok/s", *(label for _, label, _ in figures)]
    probe_text = "" if args.no_probe else (
        f" Probe: `--probe efficiency` on {args.limit} `arith_sample` prompts, 32 output tokens, 2 warm-up requests, "
        f"llama.cpp perf counters; energy is *estimated* (no readable RAPL): {runs[models[0]][0]['method']}.")
    lines = [f"Machine: {machine()}; {args.threads} thread(s), run alone on one core; started {started}. "
             f"Median over {args.repeats} repeats (fresh process each) [min–max]. pp512/tg128: llama-bench's "
             "definition (512 random prompt tokens in one batch; 128 single-token decodes), wall clock around "
             "llama_decode." + probe_text, "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        rs = runs[m]
        cells = [_cell([x["bench"]["pp"] for x in rs], 1), _cell([x["bench"]["tg"] for x in rs], 1)]
        cells += [_cell([x["probe"][k] for x in rs], scale) if all(k in x["probe"] for x in rs) else "-"
                  for k, _, scale in figures]
        lines.append(f"| {labels[m]} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    print(json.dumps(runs), file=sys.stderr)  # every repeat's figures, for the record
    if args.write:
        write_section(args.section, f"## {args.title}\n\n" + text + "\n")


if __name__ == "__main__":
    main()
