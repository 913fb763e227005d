"""Probe names → classes, imported only when asked for.

Built-in probes are `"name": "module:Class"` strings, so `llmassay --help` or a report
imports no probe; another package adds its own through the `llmassay.probes` entry-point
group (`[project.entry-points."llmassay.probes"] myprobe = "mypkg.probe:MyProbe"`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from llmassay.types import LlmassayError

if TYPE_CHECKING:
    from llmassay.probes.base import Probe

ENTRY_POINT_GROUP = "llmassay.probes"

_BUILTIN: dict[str, str] = {
    "accuracy": "llmassay.probes.accuracy:AccuracyProbe",
    "brittleness": "llmassay.probes.brittleness:BrittlenessProbe",
    "needle": "llmassay.probes.needle:NeedleProbe",
    "position": "llmassay.probes.position:PositionProbe",
    "factuality": "llmassay.probes.factuality:FactualityProbe",
    "structured": "llmassay.probes.structured:StructuredProbe",
    "injection": "llmassay.probes.injection:InjectionProbe",
    "stereotype": "llmassay.probes.stereotype:StereotypeProbe",
    "bbq": "llmassay.probes.bbq:BBQProbe",
    "toxicity": "llmassay.probes.toxicity:ToxicityProbe",
    "counterfactual": "llmassay.probes.counterfactual:CounterfactualProbe",
    "watermark": "llmassay.probes.watermark:WatermarkProbe",
    "strategies": "llmassay.probes.strategies:StrategiesProbe",
    "judge_calibration": "llmassay.probes.judge_calibration:JudgeCalibrationProbe",
    "efficiency": "llmassay.probes.efficiency:EfficiencyProbe",
    "multiturn": "llmassay.probes.multiturn:MultiturnProbe",
    "editing": "llmassay.probes.editing:EditingProbe",
    "compositionality": "llmassay.probes.compositionality:CompositionalityProbe",
}
_ADDED: dict[str, str] = {}


def register_probe(name: str, target: str) -> None:
    """Register a probe class as "module:Class" under `name` (what `--probe` accepts)."""
    _ADDED[name] = target


def probe_targets() -> dict[str, str]:
    """Every known probe name → "module:Class": built-ins, entry points, then `register_probe`."""
    targets = dict(_BUILTIN)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        targets.setdefault(ep.name, ep.value)
    targets.update(_ADDED)
    return targets


def probe_class(name: str) -> type[Probe]:
    """The class registered as `name`, imported now; a one-line error when it is unknown or
    its package is broken."""
    targets = probe_targets()
    if name not in targets:
        raise LlmassayError(f"--probe: unknown probe '{name}' (known: {', '.join(targets)})")
    module_name, _, attr = targets[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise LlmassayError(f"probe '{name}' ({targets[name]}) cannot be imported: {exc}") from None
    except AttributeError:
        raise LlmassayError(f"probe '{name}': module {module_name} has no {attr}") from None
    if getattr(cls, "name", None) != name:
        raise LlmassayError(f"probe '{name}': {targets[name]} declares name {getattr(cls, 'name', None)!r}")
    return cls


class _LazyProbes(Mapping[str, "type[Probe]"]):
    """`PROBES[name]` for code written before the registry: imports on first access."""

    def __getitem__(self, name: str) -> type[Probe]:
        if name not in probe_targets():
            raise KeyError(name)
        return probe_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(probe_targets())

    def __len__(self) -> int:
        return len(probe_targets())


PROBES: Mapping[str, type[Probe]] = _LazyProbes()
