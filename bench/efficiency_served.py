"""The efficiency probe through the openai backend against a local llama_cpp.server: TTFT,
inter-token latency (ITL) and TPOT of streamed answers (server-sent events), repeated.
Run alone on one core:

    PYTHONPATH=src:tests:bench python bench/efficiency_served.py --model smollm2-135m --repeats 3 --write
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np

from _common import machine, write_section
from efficiency_loadtest import start_server

FIGURES = (("ttft_s[p50]", "TTFT p50 ms", 1000), ("itl_s[p50]", "ITL p50 ms", 1000), ("itl_s[p95]", "ITL p95 ms", 1000),
           ("tpot_s", "TPOT ms", 1000), ("decode_tps", "decode tok/s", 1), ("e2e_s[p50]", "E2E p50 ms", 1000))


def one_run(port: int, limit: int) -> dict:
    from rich.console import Console

    from llmassay.evaluation import RunConfig, evaluate

    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(model="openai/local", model_args={"base_url": f"http://127.0.0.1:{port}/v1"},
                        tasks=["arith_sample"], probes=["efficiency"], limit=limit, use_cache=False, output_path=tmp,
                        probe_options={"efficiency.max_tokens": 32, "efficiency.warmup": 2})
        out = evaluate(cfg, console=Console(stderr=True, quiet=True))
    return {"metrics": out.results["results"]["arith_sample"]["efficiency"],
            "details": out.results["details"]["arith_sample"]["efficiency"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    proc, port = start_server(args.model, args.threads)
    try:
        runs = [one_run(port, args.limit) for _ in range(args.repeats)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for r in runs:
        print({k: r["metrics"][k]["value"] for k, _, _ in FIGURES}, r["details"]["timing_method"], file=sys.stderr)

    def cell(k: str, scale: float) -> str:
        v = np.asarray([r["metrics"][k]["value"] for r in runs]) * scale
        return f"{np.median(v):.1f} [{v.min():.1f}–{v.max():.1f}]"

    head = ["server", *(label for _, label, _ in FIGURES)]
    text = "\n".join([
        f"Machine: {machine()}; server ({args.threads} llama.cpp thread, one slot) and client alone on one core. "
        f"`--probe efficiency` through `openai/` (streamed: server-sent events, token counts from "
        f"`stream_options.include_usage`) on {args.limit} `arith_sample` prompts, 32 output tokens, 2 warm-up "
        f"requests; timing method: {', '.join(runs[0]['details']['timing_method'])}. Median over {args.repeats} "
        "repeats [min–max]; ITL pooled over requests.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
        f"| llama_cpp.server, {args.model} | " + " | ".join(cell(k, s) for k, _, s in FIGURES) + " |"])
    print(text)
    if args.write:
        write_section("efficiency_served", "## Streamed timing through the openai backend\n\n" + text + "\n")


if __name__ == "__main__":
    main()
