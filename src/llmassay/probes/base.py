"""The Probe protocol, and the one loop that runs any probe with resume.

A probe is two pure steps: `evaluate` turns a chunk of samples into per-sample rows
(asking the engine for whatever it needs), `aggregate` turns all rows into metrics.
`run_probe` owns chunking, the progress log and resume, so no probe re-implements them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.tasks.loader import Task
from llmassay.types import Metric, Sample


@dataclass(frozen=True)
class ProbeConfig:
    seed: int = 0
    temperature: float = 0.0
    options: tuple[tuple[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "temperature": self.temperature, **dict(self.options)}

    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)


@dataclass
class ProbeResult:
    probe: str
    task: str
    metrics: dict[str, Metric]
    samples: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # structured findings that are not Metrics


class Probe(Protocol):
    """Optional extras a probe may define: `analyse(task, rows, cfg) -> (metrics, details)`
    instead of computing twice, and `finalize(task, rows, engine, cfg) -> details` for
    corpus-level checks that need the model again."""

    name: str

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, cfg: ProbeConfig) -> list[dict[str, Any]]: ...

    def aggregate(self, task: Task, rows: list[dict[str, Any]], cfg: ProbeConfig) -> dict[str, Metric]: ...


def run_probe(
    probe: Probe,
    task: Task,
    engine: Engine,
    cfg: ProbeConfig,
    log: SampleLog,
    chunk_size: int = 32,
    on_samples: Callable[[int], None] | None = None,
) -> ProbeResult:
    """Evaluate the samples `log` has not finished, chunk by chunk, then aggregate all."""
    done_before = sum(1 for s in task.samples if s.id in log.rows)
    if on_samples and done_before:
        on_samples(done_before)
    todo = [s for s in task.samples if s.id not in log.rows]
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        rows = probe.evaluate(task, chunk, engine, cfg)
        log.append({"probe": probe.name, **row} for row in rows)
        if on_samples:
            on_samples(len(chunk))
    rows = [log.rows[s.id] for s in task.samples]
    notes = [f"{done_before} of {len(task.samples)} samples resumed from {log.path}"] if done_before else []
    analyse = getattr(probe, "analyse", None)
    metrics, details = analyse(task, rows, cfg) if analyse else (probe.aggregate(task, rows, cfg), {})
    finalize = getattr(probe, "finalize", None)
    if finalize is not None:
        details.update(finalize(task, rows, engine, cfg))
    return ProbeResult(probe.name, task.name, metrics, rows, notes, details)
