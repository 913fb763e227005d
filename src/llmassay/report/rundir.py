"""Read a finished run directory back: its newest results file and the samples files
written with it.

The report and `compare` read runs that may come from another machine, an older
version, or a hand-edited file, so every field they rely on is checked here once and a
bad file is one line naming the file and the field.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmassay.runfiles import pick_results, safe_name
from llmassay.types import LlmassayError

METRIC_FIELDS = ("value", "ci_low", "ci_high", "n")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricRow:
    """One reported number, flattened out of results["results"][task][probe]."""

    task: str
    probe: str
    name: str
    value: float
    ci_low: float | None  # None: not estimable (types.Metric)
    ci_high: float | None
    n: int
    method: str = ""


@dataclass
class RunData:
    root: Path
    results_path: Path
    results: dict[str, Any]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # task -> rows of every probe
    missing_samples: list[str] = field(default_factory=list)  # tasks whose samples file is absent

    @property
    def timestamp(self) -> str:
        return self.results_path.stem.removeprefix("results_")

    @property
    def label(self) -> str:
        return f"{self.model_spec} ({self.root})"

    @property
    def model_spec(self) -> str:
        return str((self.results.get("model") or {}).get("spec", "?"))

    def metrics(self) -> list[MetricRow]:
        return [
            MetricRow(task, probe, name, m["value"], m["ci_low"], m["ci_high"], m["n"], str(m.get("method") or ""))
            for task, probes in self.results["results"].items()
            for probe, metrics in probes.items()
            for name, m in metrics.items()
        ]

    def probe_metrics(self, task: str, probe: str) -> dict[str, dict[str, Any]]:
        return self.results["results"].get(task, {}).get(probe, {})

    def details(self, task: str, probe: str) -> dict[str, Any]:
        value = (self.results.get("details") or {}).get(task, {}).get(probe, {})
        return value if isinstance(value, dict) else {}

    def rows(self, task: str, probe: str) -> list[dict[str, Any]]:
        return [r for r in self.samples.get(task, []) if r.get("probe") == probe]

    def task_hashes(self) -> dict[str, str | None]:
        tasks = self.results.get("tasks") or {}
        return {name: (info or {}).get("content_hash") for name, info in tasks.items()}


def load_run(path: str | Path) -> RunData:
    """A run directory (its one run's newest results file) or one results_<ts>.json file."""
    path = Path(path)
    if path.is_dir():
        results_path, note = pick_results(path)
        if note:
            log.info(note)  # the CLI shows it: which of several files a folder stood for is never silent
    elif path.is_file():
        results_path = path
    else:
        raise LlmassayError(f"{path}: no such run directory or results file")
    results = _read_results(results_path)
    run = RunData(results_path.parent, results_path, results)
    for task in results["results"]:
        sample_path = results_path.parent / f"samples_{safe_name(task)}_{run.timestamp}.jsonl"
        if sample_path.exists():
            run.samples[task] = _read_samples(sample_path)
        else:
            run.missing_samples.append(task)
    return run


def _read_results(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LlmassayError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise LlmassayError(f"{path}: not UTF-8 text") from None
    except ValueError as exc:
        raise LlmassayError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise LlmassayError(f"{path}: expected a JSON object at the top level")
    results = doc.get("results")
    if not isinstance(results, dict):
        raise LlmassayError(f"{path}: field 'results' is missing or not an object")
    for task, probes in results.items():
        if not isinstance(probes, dict):
            raise LlmassayError(f"{path}: field 'results.{task}' is not an object")
        for probe, metrics in probes.items():
            if not isinstance(metrics, dict):
                raise LlmassayError(f"{path}: field 'results.{task}.{probe}' is not an object")
            for name, m in metrics.items():
                _check_metric(path, f"results.{task}.{probe}.{name}", m)
    for key in ("details", "tasks", "model", "config", "versions", "engine"):
        if key in doc and doc[key] is not None and not isinstance(doc[key], dict):
            raise LlmassayError(f"{path}: field '{key}' is not an object")
    return doc


def _check_metric(path: Path, where: str, m: Any) -> None:
    if not isinstance(m, dict):
        raise LlmassayError(f"{path}: field '{where}' is not a metric object")
    for key in METRIC_FIELDS:
        value = m.get(key)
        if key == "n":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif key.startswith("ci_") and key in m and value is None:
            ok = True  # a bound the data could not give (types.Metric): null, never a number
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise LlmassayError(f"{path}: field '{where}.{key}' is missing or not a number")
    m["value"], m["ci_low"], m["ci_high"] = (None if m[k] is None else float(m[k]) for k in ("value", "ci_low", "ci_high"))


def _read_samples(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LlmassayError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise LlmassayError(f"{path}: not UTF-8 text") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise LlmassayError(f"{path}:{number}: invalid JSON") from None
        if not isinstance(row, dict) or "id" not in row:
            raise LlmassayError(f"{path}:{number}: a sample row must be an object with an 'id'")
        rows.append(row)
    return rows


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
