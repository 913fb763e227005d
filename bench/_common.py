"""Shared by the bench scripts: write one marked section of docs/benchmarks.md and time children.

Each benchmark owns the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`, so
re-running one replaces its own figures and leaves the others alone.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Every figure here comes from a script in `bench/` that runs llmassay and its reference side by side "
    "in one process tree on the same machine; the ratios are the result, absolute times on these shared "
    "2-core machines are noise. Each section names the command that reproduces it.\n"
)


def machine() -> str:
    from llmassay.machine import cpu_model

    return f"{platform.machine()}, {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"


def write_section(name: str, text: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    doc = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    block = f"{start}\n{text.strip()}\n{end}"
    if start in doc and end in doc:
        doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS.write_text(doc)


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, the largest process of the child's tree) of one child."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env or dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd[:8])}… failed:\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def llmassay_run(model: str, out: Path, home: Path, limit: int, *extra: str, model_args: str = "",
                 task: str = "mmlu_sample") -> dict:
    """One cold `llmassay run` (fresh process, request cache off): timings, tokens and
    per-sample rows from the files it wrote."""
    import json

    env = {**os.environ, "LLMASSAY_HOME": str(home)}
    cmd = [sys.executable, "-m", "llmassay.cli", "run", "--model", model, "--tasks", task,
           "--limit", str(limit), "--no-cache", "--output-path", str(out), *extra]
    if model_args:
        cmd += ["--model-args", model_args]
    wall, rss = run_child(cmd, env)
    doc = json.loads(sorted(out.glob("results_*.json"))[-1].read_text())
    rows = [json.loads(x) for x in sorted(out.glob("samples_*.jsonl"))[-1].read_text().splitlines()]
    return {
        "wall": wall, "rss": rss, "load": doc["model_load_s"], "doc": doc, "rows": rows,
        "score": doc["wall_time_s"] - doc["model_load_s"],  # in-process, after the model load
        "tokens": doc["engine"]["tokens"], "evaluated": doc["engine"]["tokens_evaluated_by_backend"],
    }


def lmeval_row(wall: float, rss: float, ref: dict, *cells: str) -> str:
    """The reference row of a side-by-side table: lm-eval's child run, then `cells`."""
    return (f"| lm-eval 0.4.13 `hf`, fp32, batch 8 | {wall:.1f} | {ref['load_s']:.1f} | {ref['score_s']:.1f} "
            f"| {rss:.0f} | 1.00× | 1.00× | " + " | ".join(cells) + " |")


def llmassay_row(name: str, run: dict, ref_wall: float, ref: dict, *cells: str) -> str:
    """One llmassay run's row beside `lmeval_row`: its timings, speed-ups, then `cells`."""
    return (f"| {name} | {run['wall']:.1f} | {run['load']:.1f} | {run['score']:.1f} | {run['rss']:.0f} "
            f"| {ref_wall / run['wall']:.2f}× | {ref['score_s'] / run['score']:.2f}× | " + " | ".join(cells) + " |")


def publish(section: str, lines: list[str]) -> None:
    """Print a benchmark's markdown and write it to its section of docs/benchmarks.md."""
    text = "\n".join(lines)
    print(text)
    write_section(section, text)
