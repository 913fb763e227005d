"""llmassay: measure and mitigate the known failure modes of large language models.

The public API is what this module re-exports; everything else may change. Names are
resolved on first use (PEP 562), so `import llmassay` — and the CLI, which imports it —
loads neither the engine, torch, ray nor matplotlib until something asks for them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name → the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("CorpusSpec", "DedupSettings", "audit_contamination", "audit_dedup", "audit_pii", "rescore"),
                    "llmassay.audit"),
    **dict.fromkeys(("Backend", "load_backend", "parse_model_args", "register_backend"), "llmassay.backends.base"),
    "RequestCache": "llmassay.engine.cache",
    "Engine": "llmassay.engine.engine",
    "RunStore": "llmassay.engine.store",
    **dict.fromkeys(("RunConfig", "RunResults", "evaluate"), "llmassay.evaluate"),
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llmassay' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
