"""`evaluate(RunConfig)`: tasks × probes on one model, resumable, written as results files.

The CLI is a thin shell over this function; library users call it directly.
"""

from __future__ import annotations

import importlib.metadata
import math
import platform
import subprocess
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from llmassay.backends.base import Backend
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.engine.executors import load_executor
from llmassay.engine.store import RunStore
from llmassay.hashing import stable_hash
from llmassay.models import llmassay_home
from llmassay.probes import PROBES, ProbeConfig, ProbeResult, run_probe
from llmassay.progress import terminal_progress
from llmassay.tasks.loader import Task, load_task
from llmassay.types import LlmassayError

VERSIONED_PACKAGES = ("llmassay", "llama_cpp_python", "numpy", "httpx", "jinja2", "pydantic", "transformers", "torch")


@dataclass
class RunConfig:
    model: str
    tasks: list[str]
    probes: list[str] = field(default_factory=lambda: ["accuracy"])
    model_args: dict[str, Any] = field(default_factory=dict)
    output_path: str = "runs/latest"
    limit: int | None = None
    seed: int = 0
    num_fewshot: int | None = None
    temperature: float = 0.0
    use_cache: bool = True
    cache_path: str | None = None
    batch_size: int = 64
    chunk_size: int = 32  # samples per resume checkpoint
    probe_options: dict[str, Any] = field(default_factory=dict)  # e.g. perturbations, scoring, repeats
    metrics: list[str] | None = None  # override the tasks' metric_list (e.g. acc,acc_norm: no generation)
    executor: str = "local"  # or "ray": same results, requests sharded over `workers` actors
    workers: int | None = None

    def result_affecting(self) -> dict[str, Any]:
        """What changes per-sample results; paths and speed knobs are left out."""
        keys = ("model", "tasks", "probes", "model_args", "limit", "seed", "num_fewshot", "temperature", "probe_options", "metrics")
        return {k: getattr(self, k) for k in keys}


@dataclass
class RunResults:
    results: dict[str, Any]
    probe_results: list[ProbeResult]
    results_path: Path
    sample_paths: list[Path]


def evaluate(cfg: RunConfig, backend: Backend | None = None, console: Console | None = None) -> RunResults:
    console = console or Console(stderr=True)
    if cfg.limit is not None and cfg.limit <= 0:
        raise LlmassayError("--limit must be a positive integer")
    if cfg.chunk_size <= 0:
        raise LlmassayError("--chunk-size must be a positive integer")
    if not cfg.tasks or not cfg.probes:
        raise LlmassayError(f"--{'tasks' if not cfg.tasks else 'probe'}: nothing given")
    if not (isinstance(cfg.temperature, (int, float)) and math.isfinite(cfg.temperature) and cfg.temperature >= 0):
        raise LlmassayError(f"--temperature must be a finite number >= 0, not {cfg.temperature}")
    unknown = [p for p in cfg.probes if p not in PROBES]
    if unknown:
        raise LlmassayError(f"--probe: unknown probe {', '.join(unknown)} (known: {', '.join(PROBES)})")
    started = time.perf_counter()
    store = RunStore(cfg.output_path)  # fail on an unwritable directory before any work
    tasks = [load_task(name, cfg.num_fewshot, cfg.seed).with_metrics(cfg.metrics).limited(cfg.limit) for name in cfg.tasks]
    load_started = time.perf_counter()
    owned = backend is None
    backend = backend or load_executor(cfg.executor, cfg.model, cfg.model_args, cfg.workers)
    try:
        return _evaluate_with(cfg, backend, tasks, store, console, started, time.perf_counter() - load_started)
    finally:
        if owned and hasattr(backend, "close") and cfg.executor != "local":
            backend.close()  # Ray actors hold a model each; local backends free themselves


def _evaluate_with(
    cfg: RunConfig, backend: Backend, tasks: list[Task], store: RunStore, console: Console, started: float, load_s: float
) -> RunResults:
    cache = None
    if cfg.use_cache:
        cache = RequestCache(cfg.cache_path or llmassay_home() / "cache.sqlite")
    engine = Engine(backend, cache=cache, batch_size=cfg.batch_size)
    fingerprint = engine.fingerprint
    probe_cfg = ProbeConfig(
        seed=cfg.seed,
        temperature=cfg.temperature,
        options=tuple(sorted((k, v) for k, v in cfg.probe_options.items() if v is not None)),
    )

    outcomes: list[ProbeResult] = []
    total = sum(len(t.samples) for t in tasks) * len(cfg.probes)
    with _progress(console) as progress:
        bar = progress.add_task("evaluating", total=total, tps="") if progress else None

        def advance(n: int) -> None:
            if progress is not None and bar is not None:
                elapsed = max(1e-9, time.perf_counter() - started)
                progress.update(bar, advance=n, tps=f"{engine.stats.tokens / elapsed:,.0f} tok/s")

        for task in tasks:
            for probe_name in cfg.probes:
                if progress is not None and bar is not None:
                    progress.update(bar, description=f"{task.name} · {probe_name}")
                key = stable_hash(
                    {
                        "fingerprint": fingerprint,
                        "model_args": cfg.model_args,
                        "task": task.content_hash,
                        "metrics": task.metrics,
                        "probe": probe_name,
                        "probe_cfg": probe_cfg.as_dict(),
                    }
                )
                log = store.sample_log(task.name, probe_name, key)
                outcomes.append(run_probe(
                        PROBES[probe_name](), task, engine, probe_cfg, log, cfg.chunk_size, on_samples=advance
                    ))

    sample_paths = [
        store.write_samples(task.name, [row for o in outcomes if o.task == task.name for row in o.samples])
        for task in tasks
    ]
    results = _results_document(cfg, tasks, outcomes, fingerprint, engine, load_s, time.perf_counter() - started)
    results_path = store.write_results(results)
    if cache is not None:
        cache.close()
    return RunResults(results, outcomes, results_path, sample_paths)


def _progress(console: Console) -> AbstractContextManager[Progress | None]:
    return terminal_progress(
        console,
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("samples · {task.fields[tps]}"),
        TimeRemainingColumn(),
    )


def _results_document(
    cfg: RunConfig,
    tasks: list[Task],
    outcomes: list[ProbeResult],
    fingerprint: dict[str, Any],
    engine: Engine,
    load_s: float,
    wall_s: float,
) -> dict[str, Any]:
    metrics: dict[str, dict[str, Any]] = {}
    details: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        metrics.setdefault(o.task, {})[o.probe] = {name: m.as_dict() for name, m in o.metrics.items()}
        if o.details:
            details.setdefault(o.task, {})[o.probe] = o.details
    return {
        "results": metrics,
        "details": details,
        "notes": {f"{o.task}/{o.probe}": o.notes for o in outcomes if o.notes},
        "config": asdict(cfg),
        "config_hash": stable_hash({**cfg.result_affecting(), "fingerprint": fingerprint}),
        "model": {
            "spec": cfg.model,
            "fingerprint": fingerprint,
            "sha256": fingerprint.get("model_sha256") or fingerprint.get("weights_sha256"),
        },
        "tasks": {
            t.name: {
                "source": t.source,
                "content_hash": t.content_hash,
                "n_samples": len(t.samples),
                "num_fewshot": t.num_fewshot,
                "output_type": t.output_type,
            }
            for t in tasks
        },
        "seed": cfg.seed,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "wall_time_s": round(wall_s, 3),
        "model_load_s": round(load_s, 3),
        "engine": {
            **asdict(engine.stats),
            # tokens the model actually ran, after shared-prefix reuse inside the backend
            "tokens_evaluated_by_backend": getattr(engine.backend, "tokens_evaluated", None),
        },
        "tokens_processed": engine.stats.tokens,
    }


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    """The commit of the llmassay source tree, with '-dirty' for uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "") if commit else None
