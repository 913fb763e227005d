"""llmassay: measure and mitigate the known failure modes of large language models.

The public API is what this module re-exports; everything else may change.
"""

from llmassay.backends.base import Backend, load_backend, parse_model_args, register_backend
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.engine.store import RunStore
from llmassay.evaluate import RunConfig, RunResults, evaluate
from llmassay.metrics import bootstrap_mean, proportion
from llmassay.probes import PROBES, AccuracyProbe, Probe, ProbeConfig, ProbeResult, run_probe
from llmassay.tasks.loader import Task, TaskError, bundled_tasks, load_task
from llmassay.types import (
    GenerateRequest,
    Generation,
    LlmassayError,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Metric,
    Sample,
)

__version__ = "0.1.0"

__all__ = [
    "PROBES",
    "AccuracyProbe",
    "Backend",
    "Engine",
    "GenerateRequest",
    "Generation",
    "LlmassayError",
    "LoglikelihoodRequest",
    "LoglikelihoodResult",
    "Metric",
    "Probe",
    "ProbeConfig",
    "ProbeResult",
    "RequestCache",
    "RunConfig",
    "RunResults",
    "RunStore",
    "Sample",
    "Task",
    "TaskError",
    "bootstrap_mean",
    "bundled_tasks",
    "evaluate",
    "load_backend",
    "load_task",
    "parse_model_args",
    "proportion",
    "register_backend",
    "run_probe",
]
