"""Probes: one module per failure mode; `PROBES` maps `--probe` names to classes."""

from llmassay.probes.accuracy import AccuracyProbe
from llmassay.probes.base import Probe, ProbeConfig, ProbeResult, run_probe

PROBES: dict[str, type] = {"accuracy": AccuracyProbe}

__all__ = ["PROBES", "AccuracyProbe", "Probe", "ProbeConfig", "ProbeResult", "run_probe"]
