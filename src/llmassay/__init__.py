"""llmassay: measure and mitigate the known failure modes of large language models.

The public API is what this module re-exports; everything else may change. Names are
resolved on first use (PEP 562), so `import llmassay` — and the CLI, which imports it —
loads neither the engine, torch, ray nor matplotlib until something asks for them.
Type checkers read the same names from the `TYPE_CHECKING` block below (`X as X`: an explicit
re-export, as PEP 484 asks of a typed package); a test keeps it equal to `_EXPORTS`.

No public name may also be a module at the package root: the import system binds a submodule
over the package attribute of the same name once it is imported (`llmassay.evaluate` was
both; the run loop now lives in `llmassay.evaluation`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # the only copy: pyproject.toml reads it (tool.setuptools.dynamic)

# public name → the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("CorpusSpec", "DedupSettings", "audit_contamination", "audit_dedup", "audit_pii", "rescore"),
                    "llmassay.audit"),
    **dict.fromkeys(("Backend", "load_backend", "parse_model_args", "register_backend"), "llmassay.backends.base"),
    "RequestCache": "llmassay.engine.cache",
    "Engine": "llmassay.engine.engine",
    "RunStore": "llmassay.engine.store",
    **dict.fromkeys(("RunConfig", "RunResults", "evaluate"), "llmassay.evaluation"),
    "RunInterrupted": "llmassay.run_progress",  # Ctrl-C in evaluate(), saying what was kept
    "assess_config": "llmassay.assess",
    **dict.fromkeys(("KnowledgeBase", "bundled_kb", "load_kb"), "llmassay.factuality.kb"),
    **dict.fromkeys(("Fact", "verify"), "llmassay.factuality.verify"),
    "FactualityProbe": "llmassay.probes.factuality",
    **dict.fromkeys(("bootstrap_mean", "proportion"), "llmassay.metrics"),
    **dict.fromkeys(
        ("PROBES", "AccuracyProbe", "BrittlenessProbe", "StructuredProbe", "Analysis", "Preset", "Probe",
         "ProbeConfig", "ProbeResult", "SampleMetric", "SummaryLine", "option", "probe_class", "register_probe",
         "run_probe", "sample_values"),
        "llmassay.probes",
    ),
    "NeedleProbe": "llmassay.probes.needle",
    "PositionProbe": "llmassay.probes.position",
    "effective_length": "llmassay.longctx.grid",
    **dict.fromkeys(("compare_runs", "write_report"), "llmassay.report"),
    **dict.fromkeys(("JudgeConfig", "run_judgement"), "llmassay.judge.session"),
    **dict.fromkeys(("OracleJudge", "PairItem", "analyse_pairs", "judge_pairs"), "llmassay.judge"),
    "LoglikJudge": "llmassay.judge.loglik",
    **dict.fromkeys(("agreement", "score_agreement"), "llmassay.review.agreement"),
    **dict.fromkeys(("Task", "TaskError", "bundled_tasks", "load_task"), "llmassay.tasks.loader"),
    **dict.fromkeys(("CanaryDetector", "DetectorValidation", "RefusalDetector", "hit_at_k", "rogan_gladen",
                     "validate_detector"), "llmassay.safety"),
    **dict.fromkeys(("ParallelText", "measure_premium", "read_parallel"), "llmassay.tokens"),
    "find_glitch_tokens": "llmassay.tokens.glitch",
    "read_vocab": "llmassay.tokens.gguf_vocab",
    **dict.fromkeys(
        ("GenerateRequest", "Generation", "LlmassayError", "LoglikelihoodRequest", "LoglikelihoodResult", "Metric",
         "Sample"),
        "llmassay.types",
    ),
    **dict.fromkeys(("WatermarkConfig", "detect_ids", "z_threshold"), "llmassay.watermark"),
    "WatermarkProbe": "llmassay.probes.watermark",
    **dict.fromkeys(("TokenStats", "TokenStatsRequest"), "llmassay.backends.token_stats"),
    **dict.fromkeys(("fast_detectgpt", "log_rank", "zero_shot_scores"), "llmassay.watermark.zeroshot"),
    "EfficiencyProbe": "llmassay.probes.efficiency",
    **dict.fromkeys(("EnergyMeter", "RequestTiming", "timed_generate"), "llmassay.efficiency"),
    **dict.fromkeys(("LoadPlan", "run_loadtest"), "llmassay.efficiency.loadtest"),
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from llmassay.assess import assess_config as assess_config
    from llmassay.audit import (
        CorpusSpec as CorpusSpec, DedupSettings as DedupSettings, audit_contamination as audit_contamination,
        audit_dedup as audit_dedup, audit_pii as audit_pii, rescore as rescore,
    )
    from llmassay.backends.base import (
        Backend as Backend, load_backend as load_backend, parse_model_args as parse_model_args,
        register_backend as register_backend,
    )
    from llmassay.backends.token_stats import TokenStats as TokenStats, TokenStatsRequest as TokenStatsRequest
    from llmassay.efficiency import (
        EnergyMeter as EnergyMeter, RequestTiming as RequestTiming, timed_generate as timed_generate,
    )
    from llmassay.efficiency.loadtest import LoadPlan as LoadPlan, run_loadtest as run_loadtest
    from llmassay.engine.cache import RequestCache as RequestCache
    from llmassay.engine.engine import Engine as Engine
    from llmassay.engine.store import RunStore as RunStore
    from llmassay.evaluation import RunConfig as RunConfig, RunResults as RunResults, evaluate as evaluate
    from llmassay.factuality.kb import KnowledgeBase as KnowledgeBase, bundled_kb as bundled_kb, load_kb as load_kb
    from llmassay.factuality.verify import Fact as Fact, verify as verify
    from llmassay.judge import (
        OracleJudge as OracleJudge, PairItem as PairItem, analyse_pairs as analyse_pairs, judge_pairs as judge_pairs,
    )
    from llmassay.judge.loglik import LoglikJudge as LoglikJudge
    from llmassay.judge.session import JudgeConfig as JudgeConfig, run_judgement as run_judgement
    from llmassay.longctx.grid import effective_length as effective_length
    from llmassay.metrics import bootstrap_mean as bootstrap_mean, proportion as proportion
    from llmassay.probes import (
        AccuracyProbe as AccuracyProbe, Analysis as Analysis, BrittlenessProbe as BrittlenessProbe, PROBES as PROBES,
        Preset as Preset, Probe as Probe, ProbeConfig as ProbeConfig, ProbeResult as ProbeResult,
        SampleMetric as SampleMetric, StructuredProbe as StructuredProbe, SummaryLine as SummaryLine,
        option as option, probe_class as probe_class, register_probe as register_probe, run_probe as run_probe,
        sample_values as sample_values,
    )
    from llmassay.probes.efficiency import EfficiencyProbe as EfficiencyProbe
    from llmassay.probes.factuality import FactualityProbe as FactualityProbe
    from llmassay.probes.needle import NeedleProbe as NeedleProbe
    from llmassay.probes.position import PositionProbe as PositionProbe
    from llmassay.probes.watermark import WatermarkProbe as WatermarkProbe
    from llmassay.report import compare_runs as compare_runs, write_report as write_report
    from llmassay.review.agreement import agreement as agreement, score_agreement as score_agreement
    from llmassay.run_progress import RunInterrupted as RunInterrupted
    from llmassay.safety import (
        CanaryDetector as CanaryDetector, DetectorValidation as DetectorValidation,
        RefusalDetector as RefusalDetector, hit_at_k as hit_at_k, rogan_gladen as rogan_gladen,
        validate_detector as validate_detector,
    )
    from llmassay.tasks.loader import (
        Task as Task, TaskError as TaskError, bundled_tasks as bundled_tasks, load_task as load_task,
    )
    from llmassay.tokens import (
        ParallelText as ParallelText, measure_premium as measure_premium, read_parallel as read_parallel,
    )
    from llmassay.tokens.gguf_vocab import read_vocab as read_vocab
    from llmassay.tokens.glitch import find_glitch_tokens as find_glitch_tokens
    from llmassay.types import (
        GenerateRequest as GenerateRequest, Generation as Generation, LlmassayError as LlmassayError,
        LoglikelihoodRequest as LoglikelihoodRequest, LoglikelihoodResult as LoglikelihoodResult, Metric as Metric,
        Sample as Sample,
    )
    from llmassay.watermark import (
        WatermarkConfig as WatermarkConfig, detect_ids as detect_ids, z_threshold as z_threshold,
    )
    from llmassay.watermark.zeroshot import (
        fast_detectgpt as fast_detectgpt, log_rank as log_rank, zero_shot_scores as zero_shot_scores,
    )
else:  # hidden from type checkers, so a misspelt name is an error there rather than Any

    def __getattr__(name: str) -> Any:
        if name not in _EXPORTS:
            raise AttributeError(f"module 'llmassay' has no attribute {name!r}")
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # resolved once
        return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
