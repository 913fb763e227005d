"""The probe contract, and the one loop that runs any probe with resume.

A probe is one class in one file (see DESIGN.md, "Probe contract"):

- `name`, `description`, `challenge` (its line on the summary card), `task_types`;
- `Options`: a frozen dataclass whose fields come from `-P name.key=value`;
- `supports(task)`: None, or why not — asked before any model loads;
- `evaluate(task, samples, engine, opts, cfg)`: per-sample rows (JSON objects with an
  "id"), asking the engine for whatever the rows need;
- `sample_metrics`: the per-row value behind each metric, declared once; `compare`,
  `rescore` and the report's paired CIs all read it from here;
- `analyse(task, rows, opts, cfg)`: corpus-level metrics (value + CI + n) and details;
- optionally `after_rows` (checks that need the model again, through the same engine),
  `summary` (its headline on the report card) and `presets` (what `llmassay assess` runs).

`run_probe` owns chunking, the progress log and resume, so no probe re-implements them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from llmassay.probes._options import NoOptions, build_options, options_dict
from llmassay.types import LlmassayError, Metric, Sample

if TYPE_CHECKING:  # the contract is importable without the engine (the report reads it)
    from llmassay.engine.engine import Engine
    from llmassay.engine.store import SampleLog
    from llmassay.tasks.loader import Task

Row = dict[str, Any]  # one sample's result: a JSON object with at least "id"
SampleValue = float | bool | None


@dataclass(frozen=True)
class ProbeConfig:
    """What every probe shares in a run: the seed, the decoding temperature, what the
    model is, and this probe's own options (as given, before checking)."""

    seed: int = 0
    temperature: float = 0.0
    options: tuple[tuple[str, Any], ...] = ()
    chat_model: bool = False  # the model is instruction-tuned and has a chat template

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "temperature": self.temperature, **dict(self.options)}

    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)


@dataclass(frozen=True)
class SampleMetric:
    """The per-row value behind a corpus metric.

    `read(row)` returns a number (or bool; None = the row does not count), or, for a
    `family`, a mapping key → number that becomes metrics `name[key]`. `binary` values
    are right/wrong per item: `rescore` splits them by clean and dirty items, `compare`
    adds McNemar's test.
    """

    read: Callable[[Row], SampleValue | Mapping[str, SampleValue]]
    help: str = ""
    family: bool = False
    binary: bool = True


def sample_values(metrics: Mapping[str, SampleMetric], row: Row) -> dict[str, float]:
    """One row's value of every declared per-sample metric, by metric name."""
    out: dict[str, float] = {}
    for name, spec in metrics.items():
        try:
            value = spec.read(row)
        except (KeyError, TypeError, ValueError, IndexError):
            continue  # a row from another version, or without this metric's field
        items = value.items() if spec.family and isinstance(value, Mapping) else [(None, value)]
        for key, v in items:
            if isinstance(v, (bool, int, float)):
                out[name if key is None else f"{name}[{key}]"] = float(v)
    return out


@dataclass
class Analysis:
    metrics: dict[str, Metric]
    details: dict[str, Any] = field(default_factory=dict)  # structured findings that are not Metrics


@dataclass(frozen=True)
class Preset:
    """What `llmassay assess --quick/--full` runs for a probe: bundled tasks, a limit
    per task (None: all items) and option values."""

    tasks: tuple[str, ...]
    limit: int | None = None
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class SummaryLine:
    """One line of the report's summary card: a challenge, its headline figure, a verdict
    in plain words against the probe's documented thresholds."""

    challenge: str
    task: str
    probe: str
    metric: str
    value: float
    ci_low: float | None  # None: not estimable from this n (types.Metric)
    ci_high: float | None
    n: int
    verdict: str
    level: str = "info"  # "good" | "warn" | "bad" | "info": the card's colour

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ProbeResult:
    probe: str
    task: str
    metrics: dict[str, Metric]
    samples: list[Row]
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    summary: SummaryLine | None = None


class Probe:
    """Base class of every probe; subclasses set the class variables and implement
    `evaluate` and `analyse`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    challenge: ClassVar[str] = ""
    task_types: ClassVar[tuple[str, ...]] = ("multiple_choice", "generate_until")
    # Whether the probe scores lm-eval's per-choice contexts (winogrande: a context per
    # choice, one shared continuation); probes that put choices after one prompt cannot.
    per_choice_contexts: ClassVar[bool] = False
    Options: ClassVar[type] = NoOptions
    # Bump when the rows a probe writes change meaning: resumed rows from older code are
    # then recomputed instead of reused (the version is part of the resume key).
    schema_version: ClassVar[int] = 1
    sample_metrics: ClassVar[Mapping[str, SampleMetric]] = {}
    presets: ClassVar[Mapping[str, Preset]] = {}

    @classmethod
    def options(cls, given: Mapping[str, Any] | None = None) -> Any:
        """Checked options from `-P` strings or Python values (one-line error when bad)."""
        return build_options(cls.name, cls.Options, given or {})

    @classmethod
    def options_record(cls, opts: Any) -> dict[str, Any]:
        return options_dict(opts)

    def prepare_task(self, task: Task, opts: Any) -> Task:
        """The task this probe runs on: `task`, unless an option names the probe's own data
        (`-P stereotype.pairs=FILE`); called before `--limit`, `supports` and the model load, and
        again by `run_probe`, so it must return a task it has already prepared unchanged."""
        return task

    def supports(self, task: Task) -> str | None:
        """None when the probe can run on `task`; otherwise the reason, in a few words."""
        if task.output_type not in self.task_types:
            return f"task '{task.name}' is {task.output_type}; probe '{self.name}' needs {' or '.join(self.task_types)}"
        if getattr(task, "continuations", None) and not self.per_choice_contexts:
            return (f"task '{task.name}' has one context per choice (lm-eval's partial evaluation, as winogrande); "
                    f"probe '{self.name}' scores choices as answers after one prompt")
        return None

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        raise NotImplementedError

    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        raise NotImplementedError

    def after_rows(self, task: Task, rows: list[Row], engine: Engine, opts: Any, cfg: ProbeConfig) -> dict[str, Any]:
        """Corpus-level checks that need the model again; they go through `engine`, so
        their requests are cached and counted like any other. Returns extra details."""
        return {}

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        """The probe's headline for the summary card (None: it has none for this task)."""
        return None

    def line(self, task: Task, analysis: Analysis, metric: str, verdict: str, level: str) -> SummaryLine | None:
        """A summary line for `metric` of `analysis` (None when the run has no such metric)."""
        m = analysis.metrics.get(metric)
        if m is None:
            return None
        return SummaryLine(self.challenge or self.name, task.name, self.name, metric, m.value, m.ci_low, m.ci_high,
                           m.n, verdict, level)


def run_probe(
    probe: Probe,
    task: Task,
    engine: Engine,
    cfg: ProbeConfig,
    log: SampleLog,
    chunk_size: int = 32,
    on_samples: Callable[[int], None] | None = None,
    opts: Any = None,
) -> ProbeResult:
    """Evaluate the samples `log` has not finished, chunk by chunk, then analyse all."""
    opts = probe.options(cfg.options_dict()) if opts is None else opts
    task = probe.prepare_task(task, opts)  # `evaluate` has done it already; a direct caller has not
    reason = probe.supports(task)
    if reason:
        raise LlmassayError(f"{probe.name}: {reason}")
    done_before = sum(1 for s in task.samples if s.id in log.rows)
    if on_samples and done_before:
        on_samples(done_before)
    todo = [s for s in task.samples if s.id not in log.rows]
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        rows = probe.evaluate(task, chunk, engine, opts, cfg)
        _check_rows(probe, chunk, rows)
        log.append({"probe": probe.name, **row} for row in rows)
        if on_samples:
            on_samples(len(chunk))
    rows = [log.rows[s.id] for s in task.samples]
    notes = [f"{done_before} of {len(task.samples)} samples resumed from {log.path}"] if done_before else []
    analysis = probe.analyse(task, rows, opts, cfg)
    analysis.details.update(probe.after_rows(task, rows, engine, opts, cfg))
    line = probe.summary(task, analysis, opts) if rows else None
    return ProbeResult(probe.name, task.name, analysis.metrics, rows, notes, analysis.details, line)


def _check_rows(probe: Probe, chunk: list[Sample], rows: list[Row]) -> None:
    """A probe's rows must name the chunk's samples and survive a JSON round trip, or a
    resumed run would read back something other than what this run analysed."""
    if sorted(str(r.get("id")) for r in rows) != sorted(s.id for s in chunk):
        raise RuntimeError(f"probe {probe.name} returned rows for other samples than it was given")
    for row in rows:
        text = json.dumps(row)  # raises on values JSON cannot hold
        if json.loads(text) != row and "NaN" not in text:  # NaN never equals itself
            raise RuntimeError(f"probe {probe.name}: row {row.get('id')} does not survive a JSON round trip")
