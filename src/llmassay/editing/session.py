"""Edits on a loaded model: the key covariance of each edited layer (cached under the llmassay
home per model, layer and text), the context templates (drawn once, as ROME does), then ROME's
edits one after another on the same weights or MEMIT's batch over several layers, with the
changed matrices' deltas for `delta.save_delta` (`run_edits`); or each ROME edit alone on the
original weights, scored and undone (`run_single`, CounterFact's protocol)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from llmassay.editing.edits import Edit
from llmassay.editing.memit import MemitConfig, MemitRun, apply_memit
from llmassay.editing.rome import (EditOutcome, RomeConfig, apply_edit, context_templates, covariance_key,
                                   down_proj, key_covariance, param_name, sample_sentences)
from llmassay.home import llmassay_home

SAMPLE_SENTENCES = 300  # keys ≈ 25 tokens each: ~7,500 samples of a 1,536-wide key (SmolLM2-135M)


def sample_text() -> str:
    """Public-domain prose bundled for the long-context probe (William Morris, 1890)."""
    return (resources.files("llmassay.longctx") / "data" / "news_from_nowhere.txt").read_text(encoding="utf-8")


@dataclass
class EditRun:
    outcomes: list[EditOutcome]
    deltas: dict[str, Any]  # parameter name → edited − original (one per edited layer)
    covariance_seconds: float
    templates: list[str] = field(default_factory=list)
    memit: MemitRun | None = None  # MEMIT's per-layer record; None for ROME


def covariances(model: Any, tok: Any, layers: Sequence[int], model_id: str,
                n_sentences: int = SAMPLE_SENTENCES) -> dict[int, Any]:
    """The key covariance of each layer, cached under the llmassay home per model, layer and text."""
    sentences = sample_sentences(sample_text(), n_sentences)
    return {layer: key_covariance(model, tok, layer, sentences,
                                  llmassay_home() / "editing" / covariance_key(model_id, layer, sentences))
            for layer in layers}


def run_edits(model: Any, tok: Any, edits: Sequence[Edit], cfg: RomeConfig | MemitConfig, model_id: str,
              n_sentences: int = SAMPLE_SENTENCES,
              progress: Callable[[int, EditOutcome], None] | None = None, cache_targets: bool = True) -> EditRun:
    """Apply `edits` in place — ROME one after another, MEMIT all at once — and return what changed."""
    layers = cfg.layers if isinstance(cfg, MemitConfig) else (cfg.layer,)
    weights = {param_name(model, layer): down_proj(model, layer).weight for layer in layers}
    originals = {name: w.detach().clone() for name, w in weights.items()}
    started = time.perf_counter()
    covs = covariances(model, tok, layers, model_id, n_sentences)
    cov_seconds = time.perf_counter() - started
    memit = None
    if isinstance(cfg, MemitConfig):
        templates = context_templates(model, tok, cfg.value)
        memit = apply_memit(model, tok, edits, covs, cfg, templates, progress,
                            llmassay_home() / "editing" / "targets" if cache_targets else None, model_id)
        outcomes = memit.outcomes
    else:
        templates = context_templates(model, tok, cfg)
        outcomes = []
        for i, edit in enumerate(edits):
            outcomes.append(apply_edit(model, tok, edit, covs[cfg.layer], cfg, templates))
            if progress is not None:
                progress(i, outcomes[-1])
    return EditRun(outcomes, {name: w.detach() - originals[name] for name, w in weights.items()},
                   round(cov_seconds, 3), templates, memit)


def covariance(model: Any, tok: Any, cfg: RomeConfig, model_id: str,
               n_sentences: int = SAMPLE_SENTENCES) -> tuple[Any, float]:
    """ROME's one layer: its key covariance (from the cache when there) and the seconds it took."""
    started = time.perf_counter()
    cov = covariances(model, tok, (cfg.layer,), model_id, n_sentences)[cfg.layer]
    return cov, round(time.perf_counter() - started, 3)


@dataclass
class SingleRun:
    outcomes: list[EditOutcome]
    rows: list[dict[str, Any]]  # each edit's scores with that edit alone applied
    covariance_seconds: float
    templates: list[str] = field(default_factory=list)


def run_single(model: Any, tok: Any, edits: Sequence[Edit], cfg: RomeConfig, model_id: str,
               score: Callable[[Edit], dict[str, Any]], n_sentences: int = SAMPLE_SENTENCES,
               progress: Callable[[int, EditOutcome], None] | None = None) -> SingleRun:
    """CounterFact's protocol (Meng et al. 2022, §4.2): each edit applied to the original
    weights, scored by `score(edit)`, then the weights restored (the matrix copied back, so
    no edit sees another). The model is left unedited."""
    weight = down_proj(model, cfg.layer).weight
    original = weight.detach().clone()
    cov, cov_seconds = covariance(model, tok, cfg, model_id, n_sentences)
    templates = context_templates(model, tok, cfg)
    outcomes, rows = [], []
    try:
        for i, edit in enumerate(edits):
            outcomes.append(apply_edit(model, tok, edit, cov, cfg, templates))
            rows.append(score(edit))
            weight.data.copy_(original)
            if progress is not None:
                progress(i, outcomes[-1])
    finally:
        weight.data.copy_(original)
    return SingleRun(outcomes, rows, cov_seconds, templates)
