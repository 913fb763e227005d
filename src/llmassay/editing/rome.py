"""ROME: a rank-one update of one MLP down-projection that installs a new fact.

Follows Meng et al. 2022, "Locating and Editing Factual Associations in GPT" (arXiv
2202.05262), §3 "Interventions on Key-Value Memories", eq. 2, and its released code
(kmeng01/rome: `compute_u.py`, `compute_v.py`, `layer_stats.py`; the same steps as
EasyEdit's `easyeditor/models/rome`), for Llama-family models, where the edited matrix is
`model.layers[L].mlp.down_proj` (its input, act(gate(x))·up(x), is the key):

1. key k*: the down-projection's input at the subject's last token, averaged over the
   prompt behind a few short prefixes the model writes itself (ROME's "context templates":
   "{prefix}. {prompt}", plus the bare prompt);
2. value v* = W k* + δ: δ is added to the layer's MLP output at the subject's last token
   of every rewriting prompt and optimised by Adam so the model gives the new object
   (mean NLL over the prompts), plus ROME's KL term holding the next-token distribution
   after the subject in "{subject} is a" where it was (the subject's "essence"), a weight
   decay ‖δ‖/‖v‖² and a clamp ‖δ‖ ≤ clamp·‖v‖ (ROME: v_lr 0.5, kl_factor 0.0625,
   v_weight_decay 0.5, clamp_norm_factor 4, 20 steps for GPT-2 XL);
3. W ← W + (v* − W k*)(C⁻¹k*)ᵀ / (k*ᵀC⁻¹k*), C the uncentred covariance of keys at that
   layer over sample text (ROME: 100,000 Wikipedia samples; here a few hundred sentences
   of bundled public-domain prose, with a small ridge, which a 135M model's 1,536-wide
   keys allow), cached per model and layer.

Where this departs from the released code: v* is taken at the averaged key (eq. 2 as
written), where the code takes the bare prompt's key, and the prefixes are sampled with a
seeded top-k loop here (the code uses model.generate) so an edit is reproducible.
Sequential edits apply one after another to the same weights.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from llmassay.editing.edits import Edit
from llmassay.types import LlmassayError

PREFIX_STARTS = ("The", "Therefore", "Because", "I", "You")  # EasyEdit's / ROME's context-template seeds


@dataclass(frozen=True)
class RomeConfig:
    layer: int
    steps: int = 25
    lr: float = 0.5
    kl_factor: float = 0.0625
    weight_decay: float = 0.5
    clamp_norm_factor: float = 4.0
    n_prefixes: int = 5
    prefix_tokens: int = 5
    ridge: float = 1e-2  # × mean diagonal of C, added to C before solving
    seed: int = 0


@dataclass
class EditOutcome:
    """What one edit did: the loss it started and ended at, the update's size, its time."""

    id: str
    nll_before: float
    nll_after: float
    delta_norm: float
    seconds: float


def down_proj(model: Any, layer: int) -> Any:
    """The edited module, or one line saying why this model has none at `layer`."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None or not hasattr(layers[0], "mlp") or not hasattr(layers[0].mlp, "down_proj"):
        raise LlmassayError(f"edit: {type(model).__name__} is not a Llama-family model "
                            "(model.layers[L].mlp.down_proj); ROME here edits those only")
    if not 0 <= layer < len(layers):
        raise LlmassayError(f"edit: layer {layer} is out of range (the model has layers 0..{len(layers) - 1})")
    return layers[layer].mlp.down_proj


def param_name(model: Any, layer: int) -> str:
    module = down_proj(model, layer)
    return next(n for n, p in model.named_parameters() if p is module.weight)


class _Stop(Exception):
    """Raised by a hook once the layer's keys are read: later layers need not run."""


def _ids(tok: Any, text: str) -> list[int]:
    return list(tok(text)["input_ids"])


def _subject_last(tok: Any, text: str, subject: str) -> int:
    """Index of the subject's last token in tok(text) (the prefix through the subject, tokenised)."""
    end = text.index(subject) + len(subject)
    return len(_ids(tok, text[:end])) - 1


def _batch(seqs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def _pad_id(tok: Any) -> int:
    for name in ("pad_token_id", "eos_token_id", "unk_token_id"):
        value = getattr(tok, name, None)
        if value is not None:
            return int(value)
    return 0


def context_templates(model: Any, tok: Any, cfg: RomeConfig) -> list[str]:
    """"{}" plus cfg.n_prefixes short texts the model writes (seeded top-5 sampling), each "… . {}"."""
    gen = torch.Generator().manual_seed(cfg.seed)
    out = ["{}"]
    for start in (PREFIX_STARTS * cfg.n_prefixes)[: cfg.n_prefixes]:
        ids = _ids(tok, start)
        with torch.no_grad():
            for _ in range(cfg.prefix_tokens):
                logits = model(torch.tensor([ids])).logits[0, -1]
                top = torch.topk(logits, 5)
                pick = torch.multinomial(torch.softmax(top.values, -1), 1, generator=gen)
                ids.append(int(top.indices[pick]))
        text = tok.decode(ids, skip_special_tokens=True).replace("{", "").replace("}", "").strip()
        out.append(f"{text}. {{}}")
    return out


def _capture(model: Any, tok: Any, module: Any, texts: Sequence[str], output: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """`module`'s input (or output) for a right-padded batch of `texts`, float64, and the
    batch's attention mask; the model runs only up to that module."""
    ids, mask = _batch([_ids(tok, t) for t in texts], _pad_id(tok))
    seen: list[torch.Tensor] = []

    def grab_input(_mod: Any, args: tuple[Any, ...]) -> None:
        seen.append(args[0].detach())
        raise _Stop

    def grab_output(_mod: Any, _args: Any, out: Any) -> None:
        seen.append((out[0] if isinstance(out, tuple) else out).detach())
        raise _Stop

    handle = module.register_forward_hook(grab_output) if output else module.register_forward_pre_hook(grab_input)
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
    except _Stop:
        pass
    finally:
        handle.remove()
    return seen[0].double(), mask


def keys_at(model: Any, tok: Any, layer: int, texts: Sequence[str], positions: Sequence[int] | None) -> torch.Tensor:
    """Down-projection inputs at layer `layer`: one row per text at `positions[i]`, or every
    real token of every text when positions is None. Runs the model up to that layer only."""
    keys, mask = _capture(model, tok, down_proj(model, layer), texts, output=False)
    if positions is None:
        return keys[mask.bool()]
    return torch.stack([keys[i, p] for i, p in enumerate(positions)])


def hidden_at(model: Any, tok: Any, layer: int, edits: Sequence[Edit]) -> torch.Tensor:
    """The residual stream after layer `layer` (its output) at each edit's subject's last token
    of the bare prompt: MEMIT's h_L, one row per edit."""
    down_proj(model, layer)  # the same one-line error for a layer out of range
    hidden, _mask = _capture(model, tok, model.model.layers[layer], [e.text for e in edits], output=True)
    return torch.stack([hidden[i, _subject_last(tok, e.text, e.subject)] for i, e in enumerate(edits)])


def require_subject(edit: Edit) -> None:
    if edit.subject not in edit.text:
        raise LlmassayError(f"edit {edit.id}: the prompt does not contain the subject '{edit.subject}'")


def edit_key(model: Any, tok: Any, layer: int, edit: Edit, templates: Sequence[str]) -> torch.Tensor:
    """k*: the down-projection's input at the subject's last token, averaged over the prompt
    in each context template (ROME's compute_u, MEMIT's compute_ks)."""
    require_subject(edit)
    texts = [t.format(edit.text) for t in templates]
    return keys_at(model, tok, layer, texts, [_subject_last(tok, t, edit.subject) for t in texts]).mean(0)


def regularised(cov: torch.Tensor, ridge: float) -> torch.Tensor:
    """C + ridge × mean(diag C) × I: the covariance of a few thousand keys, made safely invertible."""
    return cov + ridge * float(torch.diagonal(cov).mean()) * torch.eye(cov.shape[0], dtype=cov.dtype)


def sample_sentences(text: str, n: int) -> list[str]:
    """The first `n` sentences of 8–60 words in `text` (deterministic), whitespace folded."""
    flat = re.sub(r"\s+", " ", text)
    out = []
    for sentence in re.split(r"(?<=[.!?])\s+", flat):
        if 8 <= len(sentence.split()) <= 60 and not sentence.isupper():
            out.append(sentence)
            if len(out) == n:
                break
    return out


def key_covariance(model: Any, tok: Any, layer: int, sentences: Sequence[str],
                   cache: Path | None = None, batch: int = 16) -> torch.Tensor:
    """C = E[k kᵀ] over every token of `sentences` (float64), from `cache` when it holds it."""
    if cache is not None and cache.exists():
        return torch.load(cache, weights_only=True)
    total, count = None, 0
    for i in range(0, len(sentences), batch):
        keys = keys_at(model, tok, layer, sentences[i: i + batch], None)
        total = keys.T @ keys if total is None else total + keys.T @ keys
        count += keys.shape[0]
    if total is None:
        raise LlmassayError("edit: no sample text to estimate the key covariance from")
    cov = total / count
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp")
        torch.save(cov, tmp)
        tmp.replace(cache)
    return cov


def covariance_key(model_id: str, layer: int, sentences: Sequence[str]) -> str:
    """A cache file name for C: the model's identity, the layer, the text."""
    digest = hashlib.sha256("\n".join([model_id, str(layer), *sentences]).encode()).hexdigest()[:24]
    return f"cov-L{layer}-{digest}.pt"


def _target_ids(tok: Any, prompt: str, obj: str) -> list[int]:
    whole, ctx = _ids(tok, prompt + " " + obj.strip()), _ids(tok, prompt)
    return whole[len(ctx):] if whole[: len(ctx)] == ctx else _ids(tok, " " + obj.strip())


def compute_value(model: Any, tok: Any, edit: Edit, templates: Sequence[str], cfg: RomeConfig,
                  scale: float) -> tuple[torch.Tensor, float, float]:
    """δ added to layer cfg.layer's MLP output at the subject's last token — the same as adding
    it to that layer's residual output, so ROME's v* = W k* + δ and MEMIT's z = h + δ both come
    from here — with the NLL of the new object before and after. `scale` is the norm of the
    vector δ moves (ROME: W k*; MEMIT: h), for the weight decay and the clamp."""
    module = down_proj(model, cfg.layer)
    prompt = edit.text
    target = _target_ids(tok, prompt, edit.new)
    seqs, positions, lookups = [], [], []
    for template in templates:
        text = template.format(prompt)
        ids = _ids(tok, text)
        seqs.append(ids + target[:-1])
        positions.append(list(range(len(ids) - 1, len(ids) - 1 + len(target))))
        lookups.append(_subject_last(tok, text, edit.subject))
    kl_text = f"{edit.subject} is a"
    seqs.append(_ids(tok, kl_text))
    lookups.append(_subject_last(tok, kl_text, edit.subject))
    ids, mask = _batch(seqs, _pad_id(tok))
    at = torch.zeros(ids.shape + (1,))
    for i, p in enumerate(lookups):
        at[i, p] = 1.0
    n_rewrite = len(templates)
    delta = torch.zeros(module.weight.shape[0], requires_grad=True)

    def add_delta(_mod: Any, _args: Any, output: torch.Tensor) -> torch.Tensor:
        return output + at.to(output.dtype) * delta.to(output.dtype)

    params = [p for p in model.parameters()]
    was = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    handle = module.register_forward_hook(add_delta)
    opt = torch.optim.Adam([delta], lr=cfg.lr)
    kl_init = None
    first = last = float("nan")
    try:
        for step in range(cfg.steps + 1):
            opt.zero_grad()
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
            nll = torch.stack([
                -logp[i, positions[i], target].mean() for i in range(n_rewrite)]).mean()
            kl_logp = logp[n_rewrite, lookups[n_rewrite]].unsqueeze(0)
            if kl_init is None:
                kl_init = kl_logp.detach()
            kl = torch.nn.functional.kl_div(kl_init, kl_logp, log_target=True, reduction="batchmean")
            loss = nll + cfg.kl_factor * kl + cfg.weight_decay * delta.norm() / scale ** 2
            if step == 0:
                first = float(nll.detach())
            last = float(nll.detach())
            if step == cfg.steps or float(loss.detach()) < 5e-2:
                break
            loss.backward()
            opt.step()
            with torch.no_grad():
                limit = cfg.clamp_norm_factor * scale
                if delta.norm() > limit:
                    delta.mul_(limit / delta.norm())
    finally:
        handle.remove()
        for p, w in zip(params, was):
            p.requires_grad_(w)
    return delta.detach().double(), first, last


def apply_edit(model: Any, tok: Any, edit: Edit, cov: torch.Tensor, cfg: RomeConfig,
               templates: Sequence[str] | None = None) -> EditOutcome:
    """One ROME edit, written into the model's weights in place."""
    started = time.perf_counter()
    templates = list(templates) if templates is not None else context_templates(model, tok, cfg)
    k = edit_key(model, tok, cfg.layer, edit, templates)
    weight = down_proj(model, cfg.layer).weight
    v_now = (weight.detach().double() @ k)
    delta, before, after = compute_value(model, tok, edit, templates, cfg, float(v_now.norm()))
    u = torch.linalg.solve(regularised(cov, cfg.ridge), k)
    update = torch.outer(delta, u) / float(k @ u)  # (v* − W k*) = δ
    with torch.no_grad():
        weight.add_(update.to(weight.dtype))
    return EditOutcome(edit.id, round(before, 4), round(after, 4), round(float(update.norm()), 6),
                       round(time.perf_counter() - started, 3))
