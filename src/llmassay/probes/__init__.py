"""Probes: one module per failure mode, found by name through a lazy registry.

Importing this package imports no probe: `PROBES[name]` / `probe_class(name)` load the
one asked for, so the CLI and the report stay light as probes multiply.
"""

from __future__ import annotations

from typing import Any

from llmassay.probes.base import (
    Analysis,
    Preset,
    Probe,
    ProbeConfig,
    ProbeResult,
    SampleMetric,
    SummaryLine,
    run_probe,
    sample_values,
)
from llmassay.probes._options import option
from llmassay.probes._registry import ENTRY_POINT_GROUP, PROBES, probe_class, probe_targets, register_probe

_CLASSES = {"AccuracyProbe": "accuracy", "BrittlenessProbe": "brittleness", "StructuredProbe": "structured"}


def __getattr__(name: str) -> Any:  # PEP 562: the built-in classes, imported on first use
    if name in _CLASSES:
        return probe_class(_CLASSES[name])
    raise AttributeError(f"module 'llmassay.probes' has no attribute {name!r}")


__all__ = [
    "ENTRY_POINT_GROUP",
    "PROBES",
    "AccuracyProbe",
    "Analysis",
    "BrittlenessProbe",
    "Preset",
    "Probe",
    "ProbeConfig",
    "ProbeResult",
    "SampleMetric",
    "StructuredProbe",
    "SummaryLine",
    "option",
    "probe_class",
    "probe_targets",
    "register_probe",
    "run_probe",
    "sample_values",
]
