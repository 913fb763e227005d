"""llmassay: measure and mitigate the known failure modes of large language models.

The public API is what this module re-exports; everything else may change.
"""

from llmassay.audit import CorpusSpec, DedupSettings, audit_contamination, audit_dedup, audit_pii, rescore
from llmassay.backends.base import Backend, load_backend, parse_model_args, register_backend
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.engine.store import RunStore
from llmassay.evaluate import RunConfig, RunResults, evaluate
from llmassay.metrics import bootstrap_mean, proportion
from llmassay.probes import PROBES, AccuracyProbe, Probe, ProbeConfig, ProbeResult, StructuredProbe, run_probe
from llmassay.report import compare_runs, write_report
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
    "CorpusSpec",
    "DedupSettings",
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
    "StructuredProbe",
    "Task",
    "TaskError",
    "audit_contamination",
    "audit_dedup",
    "audit_pii",
    "bootstrap_mean",
    "bundled_tasks",
    "compare_runs",
    "evaluate",
    "load_backend",
    "load_task",
    "parse_model_args",
    "proportion",
    "register_backend",
    "rescore",
    "run_probe",
    "write_report",
]
