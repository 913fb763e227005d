"""`evaluate(RunConfig)`: tasks × probes on one model, resumable, written as results files.

The CLI is a thin shell over this function; library users call it directly.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import math
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from llmassay.backends.base import Backend
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.engine.executors import load_executor
from llmassay.engine.store import PROGRESS_DIR, RunStore
from llmassay.hashing import stable_hash
from llmassay.home import llmassay_home
from llmassay.machine import cpu_model, environment_facts, usable_cores
from llmassay.backends.chat import is_chat_model
from llmassay.probes.base import Probe, ProbeConfig, ProbeResult, run_probe
from llmassay.probes._registry import probe_class, probe_targets
from llmassay.run_progress import Kept, RunInterrupted, RunMeter, run_progress
from llmassay.runfiles import pick_results
from llmassay.tasks.loader import Task, load_task
from llmassay.types import LlmassayError

logger = logging.getLogger(__name__)
DEFAULT_OUTPUT_PATH = "runs/latest"
VERSIONED_PACKAGES = ("llmassay", "llama_cpp_python", "numpy", "httpx", "jinja2", "pydantic", "transformers", "torch")


@dataclass
class RunConfig:
    model: str
    tasks: list[str]
    probes: list[str] = field(default_factory=lambda: ["accuracy"])
    model_args: dict[str, Any] = field(default_factory=dict)
    output_path: str = DEFAULT_OUTPUT_PATH  # relative to the working directory; said when used
    limit: int | float | None = None  # below 1: a share of each task (lm-eval's --limit 0.1)
    seed: int = 0
    num_fewshot: int | None = None
    temperature: float = 0.0
    use_cache: bool = True
    cache_path: str | None = None
    batch_size: int = 64
    chunk_size: int = 32  # samples per resume checkpoint
    # "probe.key" (as `-P probe.key=value`) or a bare "key" that one of the run's probes declares
    probe_options: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] | None = None  # override the tasks' metric_list (e.g. acc,acc_norm: no generation)
    mc_format: str | None = None  # plain .jsonl/.csv multiple choice: "cloze" (default) or "lettered"
    executor: str = "local"  # or "ray": same results, requests sharded over `workers` actors
    workers: int | None = None
    # (task, probe, limit) to run instead of tasks × probes at `limit` (what `assess` plans)
    jobs: list[tuple[str, str, int | None]] | None = None
    # load_task's keywords for lm-eval task files: trust_task_code, data_dir, lm_eval_fewshot
    task_options: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None  # `assess --quick/--full`: which presets planned the jobs (said on the card)
    # lm-eval's --gen_kwargs for generation tasks: until, max_gen_toks (Task.with_generation)
    generation_kwargs: dict[str, Any] | None = None

    def planned(self) -> list[tuple[str, str, int | None]]:
        return [(t, p, n) for t, p, n in self.jobs] if self.jobs else [(t, p, self.limit) for t in self.tasks for p in self.probes]

    def result_affecting(self, probe_records: dict[str, Any] | None = None) -> dict[str, Any]:
        """What changes per-sample results; paths and speed knobs are left out. Each probe's
        options count once, checked and with defaults (`probe_records`), not as typed."""
        keys = ("model", "tasks", "probes", "model_args", "limit", "seed", "num_fewshot", "temperature", "metrics", "jobs")
        out = {k: getattr(self, k) for k in keys}
        out["probe_options"] = probe_records if probe_records is not None else self.probe_options
        if self.mc_format is not None:  # only when given: older runs keep their config hash
            out["mc_format"] = self.mc_format
        if self.generation_kwargs:
            out["generation_kwargs"] = self.generation_kwargs
        return out


def split_probe_options(given: dict[str, Any], probes: list[str]) -> dict[str, dict[str, Any]]:
    """`{"brittleness.repeats": 5, "modes": "strict"}` → per probe; a bare key goes to the
    run's probe that declares it. An option for a probe the run does not include is an
    error, not a silent no-op."""
    out: dict[str, dict[str, Any]] = {p: {} for p in probes}
    for key, value in given.items():
        if value is None:
            continue
        if "." in key:
            probe, name = key.split(".", 1)
            if probe not in probe_targets():
                raise LlmassayError(f"-P {key}: unknown probe '{probe}' (known: {', '.join(probe_targets())})")
        else:
            name = key
            owners = [p for p in probes if name.replace("-", "_") in _option_names(p)]
            if not owners:
                elsewhere = [p for p in probe_targets() if p not in probes and name.replace("-", "_") in _option_names(p)]
                where = f"it is an option of {', '.join(elsewhere)}" if elsewhere else "no probe has it"
                raise LlmassayError(f"option '{key}': {where}, and --probe is {','.join(probes)}")
            probe = owners[0]
        if probe not in out:
            raise LlmassayError(f"-P {probe}.{name}: probe '{probe}' is not in this run (--probe {','.join(probes)})")
        out[probe][name] = value
    return out


def _option_names(probe: str) -> set[str]:
    return {f.name for f in dataclasses.fields(probe_class(probe).Options)}


@dataclass
class RunResults:
    results: dict[str, Any]
    probe_results: list[ProbeResult]
    results_path: Path
    sample_paths: list[Path]


def evaluate(cfg: RunConfig, backend: Backend | None = None, console: Console | None = None) -> RunResults:
    console = console or Console(stderr=True)
    if cfg.chunk_size <= 0:
        raise LlmassayError("--chunk-size must be a positive integer")
    if not cfg.tasks or not cfg.probes:
        raise LlmassayError(f"--{'tasks' if not cfg.tasks else 'probe'}: nothing given")
    if not (isinstance(cfg.temperature, (int, float)) and math.isfinite(cfg.temperature) and cfg.temperature >= 0):
        raise LlmassayError(f"--temperature must be a finite number >= 0, not {cfg.temperature}")
    plan = cfg.planned()
    for _, _, limit in plan:
        if limit is not None and not (isinstance(limit, (int, float)) and math.isfinite(limit) and limit > 0):
            raise LlmassayError(f"--limit must be a positive integer, or a fraction below 1 (a share of each task), "
                                f"not {limit}")
    run_probes = list(dict.fromkeys(p for _, p, _ in plan))
    probes = {name: probe_class(name)() for name in run_probes}
    given = split_probe_options(cfg.probe_options, run_probes)
    options = {name: probe.options(given[name]) for name, probe in probes.items()}  # checked before any work
    started = time.perf_counter()
    store = RunStore(cfg.output_path)  # fail on an unwritable directory before any work
    tasks = {name: load_task(name, cfg.num_fewshot, cfg.seed, cfg.mc_format, **cfg.task_options)
             .with_metrics(cfg.metrics).with_generation(cfg.generation_kwargs)
             for name in dict.fromkeys(t for t, _, _ in plan)}
    # a probe may run on its own data instead (-P stereotype.pairs=FILE): that task is the one limited and recorded
    whole = {(t, p): probes[p].prepare_task(tasks[t], options[p]) for t, p, _ in plan}
    plan = [(t, p, sample_count(limit, len(whole[t, p].samples))) for t, p, limit in plan]
    limits: dict[str, int | None] = {}
    for task_name, _, limit in plan:  # each task is limited once, to the most items any job asks for
        before = limits.get(task_name, 0)
        limits[task_name] = None if limit is None or before is None else max(before, limit)
    prepared = {(t, p): whole[t, p].limited(limits[t]) for t, p, _ in plan}
    tasks = {task.name: task for task in prepared.values()}
    jobs = [Job(prepared[t, p].limited(limit), probes[p], options[p], given[p]) for t, p, limit in plan]
    for job in jobs:  # before the model loads: an unsupported pair ends the run now, not mid-way
        reason = job.probe.supports(job.task)
        if reason:
            raise LlmassayError(f"--probe {job.probe.name}: {reason}")
    load_started = time.perf_counter()
    owned = backend is None
    try:
        backend = backend or load_executor(cfg.executor, cfg.model, cfg.model_args, cfg.workers)
    except KeyboardInterrupt:
        raise RunInterrupted("interrupted while loading the model: no sample was evaluated; "
                             "rerun the same command to start") from None
    try:
        return _evaluate_with(cfg, backend, list(tasks.values()), jobs, store, console, started,
                              time.perf_counter() - load_started)
    finally:
        if owned and hasattr(backend, "close") and cfg.executor != "local":
            backend.close()  # Ray actors hold a model each; local backends free themselves


def sample_count(limit: int | float | None, n: int) -> int | None:
    """--limit as lm-eval reads it: N items, or below 1 that share of the task's n, rounded up."""
    if limit is None:
        return None
    return math.ceil(n * limit) if limit < 1 else int(limit)


@dataclass
class Job:
    """One probe on one task: what the run loop and the resume key are made of."""

    task: Task
    probe: Probe
    opts: Any
    given: dict[str, Any]  # the options as given, for ProbeConfig.options

    def record(self) -> dict[str, Any]:
        return {"options": self.probe.options_record(self.opts), "schema_version": self.probe.schema_version}


def _evaluate_with(
    cfg: RunConfig, backend: Backend, tasks: list[Task], jobs: list[Job], store: RunStore, console: Console,
    started: float, load_s: float,
) -> RunResults:
    cache = None
    if cfg.use_cache:
        cache = RequestCache(cfg.cache_path or llmassay_home() / "cache.sqlite")
    engine = Engine(backend, cache=cache, batch_size=cfg.batch_size)
    fingerprint = engine.fingerprint
    chat_model = is_chat_model(backend, cfg.model, cfg.model_args)

    threads = getattr(backend, "n_threads", None)
    if threads:  # llama.cpp's workers spin: too many threads on a busy machine run ~10x slower
        logger.info("%s: %d thread%s (%d cores usable) on %s", cfg.model, threads, "s" * (threads > 1),
                    usable_cores(), cpu_model())  # a notice: -q hides it
    outcomes: list[ProbeResult] = []
    timing: dict[str, dict[str, Any]] = {}
    total = sum(len(job.task.samples) for job in jobs)
    kept = Kept(total, cfg.chunk_size, store.root, cache.path if cache is not None else None)
    with run_progress(console) as progress:
        meter = RunMeter(progress, engine, total, cfg.chunk_size)
        engine.on_progress = meter.answered
        for job in jobs:
            task, probe = job.task, job.probe
            meter.start_job(f"{task.name} · {probe.name}", len(task.samples))
            probe_cfg = ProbeConfig(cfg.seed, cfg.temperature, tuple(sorted(job.given.items())), chat_model)
            # The resume key holds only what changes this probe's rows: another probe's
            # options do not, and rows written by another llmassay version are not reused.
            key = stable_hash(
                {
                    "fingerprint": fingerprint,
                    "model_args": cfg.model_args,
                    "task": task.content_hash,
                    "metrics": task.metrics,
                    "probe": probe.name,
                    **job.record(),
                    "seed": cfg.seed,
                    "temperature": cfg.temperature,
                    "chat_model": chat_model,
                    "llmassay": llmassay_version(),
                    # --gen_kwargs, only when given and used: other runs keep their resume key
                    **({"generation_kwargs": task.generation_kwargs}
                       if cfg.generation_kwargs and task.output_type == "generate_until" else {}),
                }
            )
            log = store.sample_log(task.name, probe.name, key)
            kept.logs.append(log)
            job_started, computed_before, tokens_before = time.perf_counter(), engine.stats.computed, engine.stats.tokens
            try:
                outcomes.append(run_probe(probe, task, engine, probe_cfg, log, cfg.chunk_size, meter.samples,
                                          job.opts))
            except KeyboardInterrupt:
                raise RunInterrupted(kept.say(engine.kept)) from None
            # what each probe cost in this run (a resumed or cached job costs little): sizes presets
            timing[f"{task.name}/{probe.name}"] = {"wall_s": round(time.perf_counter() - job_started, 3),
                                                   "n": len(task.samples),
                                                   "computed": engine.stats.computed - computed_before,
                                                   "tokens": engine.stats.tokens - tokens_before}

    try:
        return _write_run(cfg, tasks, jobs, outcomes, store, engine, fingerprint, chat_model, load_s, started,
                          timing)
    except KeyboardInterrupt:
        raise RunInterrupted(f"interrupted while writing the results files: all {total} samples are saved in "
                             f"{store.root / PROGRESS_DIR}; rerun the same command to write them") from None
    finally:
        if cache is not None:
            cache.close()


def _write_run(
    cfg: RunConfig, tasks: list[Task], jobs: list[Job], outcomes: list[ProbeResult], store: RunStore,
    engine: Engine, fingerprint: dict[str, Any], chat_model: bool, load_s: float, started: float,
    timing: dict[str, dict[str, Any]],
) -> RunResults:
    sample_paths = [
        store.write_samples(task.name, [row for o in outcomes if o.task == task.name for row in o.samples])
        for task in tasks
    ]
    results = _results_document(cfg, tasks, jobs, outcomes, fingerprint, engine, load_s, time.perf_counter() - started)
    results["model"]["chat_template"] = chat_model
    results["timing"] = timing  # per task/probe: wall seconds, samples, requests computed (not cached)
    results["model"]["size"] = model_size(engine.backend)
    if engine.stats.truncated:
        results["notes"]["engine"] = [
            f"{engine.stats.truncated} requests did not fit the context window and were cut from the left "
            "(n_truncated_tokens in their samples); raise n_ctx / max_length to score them whole"
        ]
    results_path = store.write_results(results)
    if cfg.output_path == DEFAULT_OUTPUT_PATH:
        logger.info("wrote %s (the default output path; give --output-path / output_path to choose)",
                 store.root.resolve())
    try:
        pick_results(store.root)
    except LlmassayError:
        logger.warning("note: %s now holds results of several runs; name the results file (%s) to report or "
                    "compare it, or give each run its own --output-path", store.root, results_path.name)
    return RunResults(results, outcomes, results_path, sample_paths)


def _results_document(
    cfg: RunConfig,
    tasks: list[Task],
    jobs: list[Job],
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
    probes = {job.probe.name: job.record() for job in jobs}
    return {
        "results": metrics,
        "details": details,
        "summary": [o.summary.as_dict() for o in outcomes if o.summary is not None],
        "probes": probes,
        "notes": {f"{o.task}/{o.probe}": o.notes for o in outcomes if o.notes},
        "config": asdict(cfg),
        "config_hash": stable_hash({**cfg.result_affecting({p: r["options"] for p, r in probes.items()}),
                                    "fingerprint": fingerprint}),
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
        # llama.cpp figures are reproducible per build and CPU kernels, not across them (README)
        "environment": {**environment_facts(), "n_threads": getattr(engine.backend, "n_threads", None)},
        "wall_time_s": round(wall_s, 3),
        "model_load_s": round(load_s, 3),
        "engine": {
            **asdict(engine.stats),
            # tokens the model actually ran, after shared-prefix reuse inside the backend
            "tokens_evaluated_by_backend": getattr(engine.backend, "tokens_evaluated", None),
        },
        "tokens_processed": engine.stats.tokens,
    }


def model_size(backend: Backend) -> dict[str, Any] | None:
    """The backend's optional `model_size()` (parameters, architecture, quantisation), or None;
    read by the models × metrics matrix (report/matrix.py)."""
    hook = getattr(backend, "model_size", None)
    if not callable(hook):
        return None
    try:
        size = hook()
    except LlmassayError as exc:  # the run's results matter more than its size: keep them, say why
        logger.warning("the model's size is not recorded: %s", exc)
        return None
    return size if isinstance(size, dict) else None


def llmassay_version() -> str:
    """The running code's version (the one copy, `llmassay.__version__`), right from a source tree too."""
    from llmassay import __version__

    return __version__


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
