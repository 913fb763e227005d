"""MEMIT: many facts in one update spread over several MLP layers.

Follows Meng et al. 2023, "Mass-Editing Memory in a Transformer" (arXiv 2210.07229), Alg. 1
and §3.3, and its released `memit/memit_main.py` (`execute_memit`, `compute_z`,
`compute_ks`), for Llama-family models (the edited matrices are `model.layers[l].mlp.down_proj`,
l in the critical layers R, the last of them L):

1. for each edit i, the target z_i = h_i + δ_i of the residual stream after layer L at the
   subject's last token (h_i read on the bare prompt), δ_i optimised exactly as ROME's value
   (`rome.compute_value`: adding δ to layer L's MLP output is adding it to its residual
   output), with MEMIT's clamp ‖δ‖ ≤ 0.75‖h‖ and the weight decay scaled by ‖h‖;
2. for each layer l in R, lowest first, on the weights as already updated below it:
   K = the edits' keys at l (down_proj inputs at the subject's last token, averaged over the
   context templates, `rome.edit_key`), the residual R = (z_i − h_i(now)) / (layers left,
   this one included), and W_l ← W_l + R Kᵀ (λC_l + K Kᵀ)⁻¹ — C_l the uncentred key
   covariance at l (rome's, cached, with its small ridge), λ MEMIT's mom2_update_weight.

Where this departs from the released code: the keys are averaged over all context templates
with equal weight (MEMIT averages the bare prompt and the prefixed ones as two groups), the
templates are rome's seeded ones, and λ's default is MEMIT's GPT-J value (15,000) scaled by
the key width (1,536/16,384 for SmolLM2-135M), so λ/d — how many "typical keys" one edit
must outweigh per dimension — is GPT-J's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from llmassay.editing.edits import Edit
from llmassay.editing.rome import (EditOutcome, RomeConfig, compute_value, down_proj, edit_key, hidden_at,
                                   regularised,
                                   require_subject)
from llmassay.types import LlmassayError

GPTJ_LAMBDA, GPTJ_KEY_WIDTH = 15000.0, 16384  # hparams/MEMIT/EleutherAI_gpt-j-6B.json, GPT-J's MLP width
MEMIT_CLAMP = 0.75  # clamp_norm_factor of MEMIT's GPT-2 XL and GPT-J settings


@dataclass(frozen=True)
class MemitConfig:
    layers: tuple[int, ...]  # R, ascending; z is optimised at the last
    value: RomeConfig  # the z optimisation (its layer is layers[-1]) and the covariance ridge
    mom2_update_weight: float | None = None  # λ; None: GPT-J's 15,000 × key width / 16,384


def memit_config(layers: Sequence[int], steps: int = 25, seed: int = 0,
                 mom2_update_weight: float | None = None) -> MemitConfig:
    return MemitConfig(tuple(layers), RomeConfig(layer=layers[-1], steps=steps, seed=seed,
                                                 clamp_norm_factor=MEMIT_CLAMP), mom2_update_weight)


def parse_layers(text: str) -> tuple[int, ...]:
    """"2,3,4,5" or "2-5" → (2, 3, 4, 5); one line saying what is wrong otherwise."""
    text = text.strip()
    try:
        if "-" in text.strip("-") and "," not in text:
            low, high = (int(x) for x in text.split("-", 1))
            layers = tuple(range(low, high + 1))
        else:
            layers = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise LlmassayError(f"edit: --layers '{text}' must be layer numbers like 2,3,4,5 or 2-5") from None
    if not layers or list(layers) != sorted(set(layers)) or layers[0] < 0:
        raise LlmassayError(f"edit: --layers '{text}' must name distinct layers 0 or above in ascending order")
    return layers


@dataclass
class LayerStep:
    """One layer's share: the mean ‖z − h‖ before its update and the update's size."""

    layer: int
    residual_before: float
    update_norm: float
    seconds: float


@dataclass
class MemitRun:
    outcomes: list[EditOutcome]  # per edit: the z optimisation (delta_norm = ‖δ‖, seconds)
    steps: list[LayerStep] = field(default_factory=list)
    residual_after: float = 0.0  # mean ‖z − h‖ once every layer is updated
    lam: float = 0.0
    z_from_cache: int = 0  # targets read from the cache (their seconds are those of the run that made them)


def _z_file(cache: Path, model_id: str, edit: Edit, cfg: MemitConfig, templates: Sequence[str]) -> Path:
    """One file per target: the model, the edit, the value settings and the templates decide z."""
    key = json.dumps([model_id, dataclasses.asdict(edit), dataclasses.asdict(cfg.value), list(templates)],
                     sort_keys=True)
    return cache / f"z-L{cfg.layers[-1]}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pt"


def _target(model: Any, tok: Any, edit: Edit, cfg: MemitConfig, templates: Sequence[str],
            cache: Path | None, model_id: str) -> tuple[torch.Tensor, EditOutcome, bool]:
    """z = h + δ for one edit, from the cache when it holds it (as MEMIT's code caches v*)."""
    path = _z_file(cache, model_id, edit, cfg, templates) if cache is not None else None
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=True)
        return saved["z"], EditOutcome(**saved["outcome"]), True
    started = time.perf_counter()
    require_subject(edit)
    h = hidden_at(model, tok, cfg.layers[-1], [edit])[0]
    delta, before, after = compute_value(model, tok, edit, templates, cfg.value, float(h.norm()))
    outcome = EditOutcome(edit.id, round(before, 4), round(after, 4), round(float(delta.norm()), 6),
                          round(time.perf_counter() - started, 3))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"z": h + delta, "outcome": dataclasses.asdict(outcome)}, tmp)
        tmp.replace(path)
    return h + delta, outcome, False


def _lambda(cfg: MemitConfig, key_width: int) -> float:
    return cfg.mom2_update_weight if cfg.mom2_update_weight is not None else GPTJ_LAMBDA * key_width / GPTJ_KEY_WIDTH


def apply_memit(model: Any, tok: Any, edits: Sequence[Edit], covs: Mapping[int, torch.Tensor], cfg: MemitConfig,
                templates: Sequence[str], progress: Callable[[int, EditOutcome], None] | None = None,
                z_cache: Path | None = None, model_id: str = "") -> MemitRun:
    """Every edit at once, written into the weights of cfg.layers in place; each target z is
    kept in `z_cache` (when given) under the model's identity, so a larger batch that
    contains these edits computes only its new ones."""
    for layer in cfg.layers:
        down_proj(model, layer)  # one line for a layer out of range, before any work
    last = cfg.layers[-1]
    zs, outcomes, cached = [], [], 0
    for i, edit in enumerate(edits):
        z_i, outcome, hit = _target(model, tok, edit, cfg, templates, z_cache, model_id)
        zs.append(z_i)
        outcomes.append(outcome)
        cached += hit
        if progress is not None:
            progress(i, outcome)
    z = torch.stack(zs)  # n × hidden
    width = down_proj(model, last).weight.shape[1]
    run = MemitRun(outcomes, lam=_lambda(cfg, width), z_from_cache=cached)
    for i, layer in enumerate(cfg.layers):
        started = time.perf_counter()
        keys = torch.stack([edit_key(model, tok, layer, e, templates) for e in edits])  # n × d_ff
        resid = z - hidden_at(model, tok, last, edits)
        share = resid / (len(cfg.layers) - i)
        system = run.lam * regularised(covs[layer], cfg.value.ridge) + keys.T @ keys
        update = share.T @ torch.linalg.solve(system, keys.T).T  # hidden × d_ff: R Kᵀ(λC + KKᵀ)⁻¹
        weight = down_proj(model, layer).weight
        with torch.no_grad():
            weight.add_(update.to(weight.dtype))
        run.steps.append(LayerStep(layer, round(float(resid.norm(dim=1).mean()), 4), round(float(update.norm()), 6),
                                   round(time.perf_counter() - started, 3)))
    run.residual_after = round(float((z - hidden_at(model, tok, last, edits)).norm(dim=1).mean()), 4)
    return run
