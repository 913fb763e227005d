"""Efficiency: per-request latency and throughput, resources and energy with their method,
and a load test of a served endpoint (`llmassay loadtest`)."""

from llmassay.efficiency.host import Energy, EnergyMeter, host_facts
from llmassay.efficiency.timing import RequestTiming, timed_generate, timing_method

__all__ = ["Energy", "EnergyMeter", "RequestTiming", "host_facts", "timed_generate", "timing_method"]
