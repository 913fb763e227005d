"""Probes: one module per failure mode; `PROBES` maps `--probe` names to classes."""

from llmassay.probes.accuracy import AccuracyProbe
from llmassay.probes.base import Probe, ProbeConfig, ProbeResult, run_probe
from llmassay.probes.brittleness import BrittlenessProbe
from llmassay.probes.structured import StructuredProbe

PROBES: dict[str, type] = {"accuracy": AccuracyProbe, "brittleness": BrittlenessProbe, "structured": StructuredProbe}

__all__ = ["PROBES", "AccuracyProbe", "BrittlenessProbe", "StructuredProbe", "Probe", "ProbeConfig", "ProbeResult", "run_probe"]
