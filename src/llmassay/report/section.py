"""What a probe contributes to the report and to `compare`, and how it is found.

A probe's view is one module, `llmassay.report.sections.<probe>`, defining any of:

- `build(ctx) -> Section`: its plots and tables;
- `browser_rows(ctx) -> list[BrowserRow]`: its rows in the per-sample browser;
- `paired_values(row) -> dict[str, float]`: per-sample values of its metrics, which
  `compare` pairs across runs by sample id (a metric named here gets a paired CI). A
  registered probe declares these once, as its `sample_metrics` (the probe contract);
  this hook is for results of probes that are not installed here.

Whatever a module leaves out, or a probe with no module at all, gets the generic view
(`sections/generic.py`), so a new probe adds one file and edits nothing here.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

from llmassay.report.plots import Interval
from llmassay.report.rundir import finite

HOOKS = ("build", "browser_rows", "paired_values")


@dataclass(frozen=True)
class Plot:
    title: str
    svg: str  # produced by llmassay.report.plots (matplotlib escapes every text it draws)
    caption: str = ""


@dataclass(frozen=True)
class TableBlock:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    task: str
    probe: str
    plots: list[Plot] = field(default_factory=list)
    tables: list[TableBlock] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)  # details no table could show, dumped as JSON


@dataclass(frozen=True)
class BrowserRow:
    """One line of the per-sample browser. Every string here is untrusted text."""

    task: str
    probe: str
    id: str
    prompt: str
    output: str
    variant: str | None = None
    correct: bool | None = None
    brittle: bool | None = None
    json_valid: bool | None = None
    scores: str = ""
    gold: str = ""  # the expected answer, as the row's output would show it


@dataclass(frozen=True)
class SectionContext:
    task: str
    probe: str
    metrics: dict[str, dict[str, Any]]
    details: dict[str, Any]
    rows: list[dict[str, Any]]
    index: int = 0  # position of this section in the report, for unique plot ids

    def key(self, name: str) -> str:
        return f"{self.index}-{name}"

    def interval(self, name: str) -> Interval | None:
        m = self.metrics.get(name)
        if not m or not finite(m.get("value")):
            return None
        # A bound that is not estimable (None) becomes an infinity: the plot draws an arrow
        # for it, never a whisker at some number.
        low = -math.inf if m.get("ci_low") is None else float(m["ci_low"])
        high = math.inf if m.get("ci_high") is None else float(m["ci_high"])
        return float(m["value"]), low, high

    def family(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Metrics named `prefix[key]`, by key, in the probe's order."""
        return {
            name[len(prefix) + 1 : -1]: m
            for name, m in self.metrics.items()
            if name.startswith(prefix + "[") and name.endswith("]")
        }


@cache
def _available() -> frozenset[str]:
    from llmassay.report import sections

    return frozenset(m.name for m in pkgutil.iter_modules(sections.__path__) if not m.name.startswith("_"))


def _module(probe: str) -> ModuleType | None:
    if probe == "generic" or probe not in _available():
        return None
    return importlib.import_module(f"llmassay.report.sections.{probe}")


def declared_sample_metrics(probe: str) -> Any:
    """The probe's `sample_metrics` when the probe is registered here, else None."""
    from llmassay.probes._registry import probe_class, probe_targets
    from llmassay.types import LlmassayError

    if probe not in probe_targets():
        return None
    try:
        return probe_class(probe).sample_metrics or None
    except LlmassayError:
        return None  # a broken third-party probe: its results still get the generic view


def declared_binary_values(probe: str, row: dict[str, Any]) -> dict[str, bool] | None:
    """One row's right/wrong per-sample metrics as the probe declares them (`binary`), by name;
    None when the probe is not registered here (the caller falls back to the row's fields)."""
    declared = declared_sample_metrics(probe)
    if declared is None:
        return None
    from llmassay.probes.base import sample_values

    binary = {name: spec for name, spec in declared.items() if spec.binary}
    return {name: value == 1.0 for name, value in sample_values(binary, row).items()}


def hook(probe: str, name: str) -> Callable[..., Any]:
    """The probe's own `name` hook, or the generic one; `paired_values` comes from the
    probe's declared `sample_metrics` when it has them."""
    if name not in HOOKS:
        raise ValueError(f"unknown report hook {name!r}")
    if name == "paired_values":
        declared = declared_sample_metrics(probe)
        if declared is not None:
            from llmassay.probes.base import sample_values

            return lambda row: sample_values(declared, row)
    own = getattr(_module(probe), name, None)
    if own is not None:
        return own
    from llmassay.report.sections import generic

    return getattr(generic, name)
