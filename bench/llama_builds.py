"""llama.cpp builds on this CPU (issue #31): speed of each build, the same numbers across
builds, and threads under contention.

Each build is a llama-cpp-python 0.3.36 wheel installed into its own folder
(`pip install --no-deps --target DIR wheel`) and put first on PYTHONPATH in a fresh child
process, so every build runs the same llmassay code on the same machine in one process tree:

- speed: prefill of a 1,500-token prompt (one n_batch=2048 decode) and generation of 128
  tokens one at a time, SmolLM2-135M Q4_1, 2 threads; median of 5 passes after a warm-up;
- agreement: log P(choice | question) of the first 100 `mmlu_sample` questions (400 choices)
  from each build, against the first build's: mean and max |Δ| in nats, and questions whose
  pick (argmax) differs;
- contention: the default build with a busy-loop neighbour on one core, 1 vs 2 threads.

    .venv/bin/python bench/llama_builds.py --build "native-no-AMX (default)=" \\
        --build "AVX2 only=/tmp/llama-avx2" --build "native+AMX, use_extra_bufts=false=/tmp/llama-native:false" --write

A build is NAME=DIR[:false] (split at the last "="; DIR empty: the venv's own; ':false' loads with
use_extra_bufts=false).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
N_PROMPT, N_GEN, PASSES, N_QUESTIONS = 1500, 128, 5, 100
BUSY_GEN, BUSY_PASSES = 32, 2  # under contention 2 threads decode at a few tokens/s


def _speed(threads: int, extra: bool | None, n_gen: int = N_GEN, passes: int = PASSES) -> dict[str, float]:
    import llama_cpp

    from llmassay.backends.llama_load import open_llama
    from llmassay.models import resolve_model_path

    llm = open_llama(str(resolve_model_path("smollm2-135m")), n_threads=threads, use_extra_bufts=extra,
                     n_ctx=N_PROMPT + n_gen + 8, n_batch=2048, n_ubatch=2048, verbose=False, seed=0)
    rng = np.random.default_rng(0)
    prompt = rng.integers(100, llm.n_vocab() - 100, N_PROMPT).tolist()
    gen = rng.integers(100, llm.n_vocab() - 100, n_gen).tolist()
    out: dict[str, float] = {}
    for name, batches in (("prefill", [prompt]), ("generation", [[t] for t in gen])):
        rates = []
        for _ in range(passes + 1):  # the first is the warm-up
            llm.reset()
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm._ctx.ctx), True)
            start = time.perf_counter()
            for batch in batches:
                llm.eval(batch)
            rates.append(sum(len(b) for b in batches) / (time.perf_counter() - start))
        out[name] = float(np.median(rates[1:]))
    llm.close()
    return out


def _loglikelihoods(extra: bool | None) -> list[list[float]]:
    from llmassay.backends.llamacpp import LlamaCppBackend
    from llmassay.tasks.loader import load_task
    from llmassay.types import LoglikelihoodRequest

    backend = LlamaCppBackend("smollm2-135m", n_threads=2, use_extra_bufts=extra)
    task = load_task("mmlu_sample").limited(N_QUESTIONS)
    reqs = [LoglikelihoodRequest(s.prompt, task.target_delimiter + c) for s in task.samples for c in s.choices]
    scores = [r.logprob for r in backend.loglikelihood(reqs)]
    sizes = [len(s.choices) for s in task.samples]
    starts = np.cumsum([0, *sizes])
    return [scores[a:b] for a, b in zip(starts[:-1], starts[1:])]


def child(args: argparse.Namespace) -> None:
    from llmassay.machine import llama_system_info

    extra = None if args.extra == "auto" else args.extra == "true"
    result: dict = {"system_info": llama_system_info()}
    if args.part in ("all", "speed"):
        result["speed"] = _speed(args.threads, extra, args.n_gen, args.passes)
    if args.part in ("all", "agree"):
        result["logprobs"] = _loglikelihoods(extra)
    print(json.dumps(result))


def run_build(path: str, extra: str, part: str, threads: int = 2, n_gen: int = N_GEN, passes: int = PASSES) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (path, str(ROOT / "src"), str(ROOT / "bench")) if p)
    cmd = [sys.executable, __file__, "--child", "--extra", extra, "--part", part, "--threads", str(threads),
           "--n-gen", str(n_gen), "--passes", str(passes)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{path or 'venv'}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def contention() -> dict[str, dict[str, float]]:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1)
        return {f"{t} thread{'s' * (t > 1)}": run_build("", "auto", "speed", t, BUSY_GEN, BUSY_PASSES)["speed"]
                for t in (1, 2)}
    finally:
        hog.kill()
        hog.wait()


def agreement(base: list[list[float]], other: list[list[float]]) -> dict[str, float]:
    a, b = np.array(base), np.array(other)
    diff = np.abs(a - b)
    return {"mean": float(diff.mean()), "max": float(diff.max()),
            "picks": int((a.argmax(axis=1) != b.argmax(axis=1)).sum()), "identical": int((diff == 0).all(axis=1).sum())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", action="append", default=[], help="NAME=DIR[:false]")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--extra", default="auto")
    parser.add_argument("--part", default="all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-gen", type=int, default=N_GEN)
    parser.add_argument("--passes", type=int, default=PASSES)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows, first = [], None
    for spec in args.build:
        name, _, where = spec.rpartition("=")
        path, _, flag = where.partition(":")
        result = run_build(path, "false" if flag == "false" else "auto", "all")
        first = first or result
        rows.append((name, result, agreement(first["logprobs"], result["logprobs"])))
        print(name, result["speed"], rows[-1][2], file=sys.stderr)
    busy = contention()
    base = rows[0][1]["speed"]
    lines = [
        "### llama.cpp builds on an AMX CPU (issue #31)", "",
        f"`.venv/bin/python bench/llama_builds.py {' '.join(repr(b) for b in args.build)} --write` — {machine()}. "
        f"SmolLM2-135M-Instruct Q4_1; prefill of {N_PROMPT} tokens in one batch and {N_GEN} single-token decodes, "
        f"2 threads, median of {PASSES} passes after a warm-up, each build a fresh process; agreement: log P of the "
        f"{4 * N_QUESTIONS} choices of the first {N_QUESTIONS} `mmlu_sample` questions against the first build.", "",
        "| build | llama.cpp system_info | prefill tok/s | vs default | generation tok/s | vs default "
        "| mean abs Δ loglik | max abs Δ | questions picking another choice |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result, agree in rows:
        speed = result["speed"]
        info = (result["system_info"] or "").replace("CPU : ", "").replace(" | ", ", ").strip(" |")
        lines.append(f"| {name} | {info} | {speed['prefill']:.0f} | {speed['prefill'] / base['prefill']:.2f}× | "
                     f"{speed['generation']:.1f} | {speed['generation'] / base['generation']:.2f}× | "
                     f"{agree['mean']:.3g} | {agree['max']:.3g} | {agree['picks']}/{N_QUESTIONS} |")
    lines += ["", f"Threads under contention (default build, a `while True: pass` neighbour holding one of the 2 cores; "
              f"{N_PROMPT}-token prefill and {BUSY_GEN} decodes, median of {BUSY_PASSES} passes after a warm-up). "
              "llama.cpp's workers spin-wait for each other, so a second thread that shares its core with the "
              "neighbour stalls every decode step; `machine.default_threads` picks 1 here:", "",
              "| threads | prefill tok/s | generation tok/s |", "| --- | --- | --- |"]
    lines += [f"| {k} | {v['prefill']:.0f} | {v['generation']:.1f} |" for k, v in busy.items()]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("llama-builds", text)


if __name__ == "__main__":
    main()
