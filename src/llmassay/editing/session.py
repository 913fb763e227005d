"""ROME edits on a loaded model: the key covariance (cached under the llmassay home per
model, layer and text), the context templates (drawn once, as ROME does), then either each
edit in turn on the same weights with the changed matrix's delta for `delta.save_delta`
(`run_edits`), or each edit alone on the original weights, scored and undone (`run_single`,
CounterFact's protocol)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from llmassay.editing.edits import Edit
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
    deltas: dict[str, Any]  # parameter name → edited − original
    covariance_seconds: float
    templates: list[str] = field(default_factory=list)


def covariance(model: Any, tok: Any, cfg: RomeConfig, model_id: str,
               n_sentences: int = SAMPLE_SENTENCES) -> tuple[Any, float]:
    """The layer's key covariance (from the llmassay home's cache when there) and its seconds."""
    started = time.perf_counter()
    sentences = sample_sentences(sample_text(), n_sentences)
    cache = llmassay_home() / "editing" / covariance_key(model_id, cfg.layer, sentences)
    return key_covariance(model, tok, cfg.layer, sentences, cache), round(time.perf_counter() - started, 3)


def run_edits(model: Any, tok: Any, edits: Sequence[Edit], cfg: RomeConfig, model_id: str,
              n_sentences: int = SAMPLE_SENTENCES,
              progress: Callable[[int, EditOutcome], None] | None = None) -> EditRun:
    """Apply `edits` one after another (in place) and return what changed."""
    weight = down_proj(model, cfg.layer).weight
    original = weight.detach().clone()
    cov, cov_seconds = covariance(model, tok, cfg, model_id, n_sentences)
    templates = context_templates(model, tok, cfg)
    outcomes = []
    for i, edit in enumerate(edits):
        outcomes.append(apply_edit(model, tok, edit, cov, cfg, templates))
        if progress is not None:
            progress(i, outcomes[-1])
    return EditRun(outcomes, {param_name(model, cfg.layer): weight.detach() - original}, cov_seconds,
                   templates)


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
