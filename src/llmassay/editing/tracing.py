"""Causal tracing: which hidden states carry a fact from the subject to the answer.

Follows Meng et al. 2022, "Locating and Editing Factual Associations in GPT" (arXiv
2202.05262), §2.1, and its released `experiments/causal_trace.py` (kmeng01/rome):

1. clean run: the prompt as is; P(answer) = p_clean, where the answer is the first token
   of the true object (" old");
2. corrupted runs: Gaussian noise of `noise_factor` × σ added to the input embeddings of
   the subject's tokens (σ the standard deviation of the subjects' token embeddings, ROME's
   "s3" rule), `samples` noise draws; P(answer) averaged over them = p_corrupt;
3. corrupted-with-restoration runs: the same noise, with one hidden state — a layer's
   output at one token position — set back to its clean value; the indirect effect of that
   state is P(answer | restored) − p_corrupt. The MLP variant restores the MLP outputs of a
   window of `window` layers centred on each layer (ROME: 10) at one token.

As in the released code the noise is drawn once per prompt (seeded) and reused for every
restoration (common random numbers: effects differ by the restoration alone), and only
facts the model already gives (the answer is its top next token) are traced by default.
States before the subject are the same in clean and corrupted runs, so they are not run:
their effect is zero by construction. Positions are summarised as in ROME's Figure 2:
first, middle and last subject token, first token after the subject, further tokens, and
the prompt's last token; each group's mean effect gets a bootstrap CI over prompts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from llmassay.editing.edits import Edit
from llmassay.editing.rome import _target_ids, down_proj
from llmassay.metrics import bootstrap_mean, bootstrap_statistic
from llmassay.types import LlmassayError, Metric

KINDS = ("state", "mlp")
GROUPS = ("subject first", "subject middle", "subject last", "first after subject", "further tokens", "last token")
MAX_BATCH = 320  # sequences per forward pass (restorations × noise samples)


@dataclass(frozen=True)
class TraceConfig:
    samples: int = 10  # noise draws per prompt (ROME: 10)
    noise_factor: float = 3.0  # × σ of the subjects' token embeddings (ROME: "s3")
    window: int = 10  # MLP layers restored together, centred on each layer (ROME: 10)
    seed: int = 0
    known_only: bool = True  # ROME traces only facts the model predicts


@dataclass
class PromptTrace:
    """One prompt: P(answer) clean, corrupted, and after each restoration (kind → positions × layers)."""

    id: str
    prompt: str
    tokens: list[str]
    subject_range: tuple[int, int]  # [start, end) token positions of the subject
    answer: str
    p_clean: float
    p_corrupt: float
    restored: dict[str, list[list[float]]]  # rows: positions subject_range[0]..last; columns: layers

    def effects(self, kind: str) -> np.ndarray:
        return np.asarray(self.restored[kind]) - self.p_corrupt

    def groups(self) -> dict[str, list[int]]:
        """Rows of `restored` (offsets from the subject's first token) in each of ROME's groups."""
        start, end = self.subject_range
        last = len(self.tokens) - 1
        rows = {g: [] for g in GROUPS}
        rows["subject first"] = [0]
        rows["subject middle"] = list(range(1, end - start - 1))
        rows["subject last"] = [end - 1 - start]
        if end < last:
            rows["first after subject"] = [end - start]
            rows["further tokens"] = list(range(end + 1 - start, last - start))
        if last >= end:
            rows["last token"] = [last - start]
        return rows

    def grouped(self, kind: str) -> dict[str, np.ndarray | None]:
        """Each group's effect per layer (mean over its positions), None where the prompt has none."""
        effects = self.effects(kind)
        return {g: effects[rows].mean(0) if rows else None for g, rows in self.groups().items()}


@dataclass
class TraceResult:
    model: str
    config: TraceConfig
    noise_std: float
    n_layers: int
    prompts: list[PromptTrace]
    skipped: list[dict[str, Any]] = field(default_factory=list)  # facts the model does not give
    seconds: float = 0.0

    def table(self, kind: str) -> dict[str, list[Metric]]:
        """Mean indirect effect per group and layer, with a bootstrap CI over prompts."""
        out = {}
        for group in GROUPS:
            per_prompt = [g for p in self.prompts if (g := p.grouped(kind)[group]) is not None]
            out[group] = [bootstrap_mean([row[layer] for row in per_prompt]) for layer in range(self.n_layers)]
        return out

    def mlp_at_subject_last(self) -> list[Metric]:
        return self.table("mlp")["subject last"]

    def suggested_layer(self) -> tuple[int, Metric]:
        """The layer whose (windowed) MLP restoration at the subject's last token recovers the
        most, and the bootstrap interval of that argmax over prompts (how sure the choice is)."""
        matrix = np.asarray([p.grouped("mlp")["subject last"] for p in self.prompts])
        peak = bootstrap_statistic(matrix, lambda m: float(np.argmax(m.mean(0))))
        return int(peak.value), peak

    def to_json(self) -> dict[str, Any]:
        def metric(m: Metric) -> dict[str, Any]:
            return {"value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n}

        peak, interval = self.suggested_layer() if self.prompts else (None, None)
        return {
            "model": self.model, "method": "causal tracing (Meng et al. 2022 §2.1, ROME's causal_trace.py)",
            "config": self.config.__dict__, "noise_std": self.noise_std, "n_layers": self.n_layers,
            "n_prompts": len(self.prompts), "seconds": round(self.seconds, 3),
            "p_clean": metric(bootstrap_mean([p.p_clean for p in self.prompts])),
            "p_corrupt": metric(bootstrap_mean([p.p_corrupt for p in self.prompts])),
            "mean_indirect_effect": {k: {g: [metric(m) for m in row] for g, row in self.table(k).items()}
                                     for k in KINDS},
            "suggested_layer": None if interval is None else {
                "layer": peak, "ci_low": interval.ci_low, "ci_high": interval.ci_high, "n": interval.n,
                "rule": f"argmax over layers of the MLP effect (window {self.config.window}) at the subject's "
                        "last token; CI: percentile bootstrap of that argmax over prompts"},
            "prompts": [p.__dict__ for p in self.prompts], "skipped": self.skipped,
        }


def _untuple(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, tuple) else x


def _layers(model: Any) -> Any:
    down_proj(model, 0)  # one line if this is not a Llama-family model
    return model.model.layers


def subject_range(tok: Any, text: str, subject: str) -> tuple[list[int], tuple[int, int]]:
    """The prompt's token ids and the [start, end) token span covering the subject's characters."""
    start = text.index(subject)
    end = start + len(subject)
    try:
        enc = tok(text, return_offsets_mapping=True)
    except NotImplementedError:
        raise LlmassayError("trace: the tokenizer gives no character offsets (a fast tokenizer is needed)") from None
    spans = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if b > start and a < end and b > a]
    if not spans:
        raise LlmassayError(f"trace: no token of '{text}' covers the subject '{subject}'")
    return list(enc["input_ids"]), (spans[0], spans[-1] + 1)


def embedding_std(model: Any, tok: Any, subjects: Sequence[str]) -> float:
    """σ of the input embeddings of the subjects' tokens (each subject tokenised alone, as ROME)."""
    embed = model.get_input_embeddings()
    with torch.no_grad():
        rows = [embed(torch.tensor([tok(s)["input_ids"]], device=embed.weight.device))[0] for s in subjects]
    return float(torch.cat(rows).float().std())


class _Patcher:
    """Forward hooks for one batch: noise on the subject's embeddings in every row, and each
    row group's clean states written back at its (layer, position) pairs."""

    def __init__(self, model: Any, noise: torch.Tensor, span: tuple[int, int], clean: dict[str, list[torch.Tensor]],
                 restores: Sequence[dict[str, list[tuple[int, int]]]], samples: int):
        self.handles: list[Any] = []
        groups = len(restores)
        device = next(model.parameters()).device
        tiled = noise.repeat(groups, 1, 1).to(device)
        start, end = span

        def embed_hook(_mod: Any, _args: Any, out: torch.Tensor) -> torch.Tensor:
            out = out.clone()
            out[:, start:end] += tiled.to(out.dtype)
            return out

        self.handles.append(model.get_input_embeddings().register_forward_hook(embed_hook))
        layers = _layers(model)
        for kind, modules in (("state", layers), ("mlp", [m.mlp for m in layers])):
            plan: dict[int, tuple[list[int], list[int]]] = {}
            for g, restore in enumerate(restores):
                for layer, pos in restore.get(kind, []):
                    rows, cols = plan.setdefault(layer, ([], []))
                    rows.extend(range(g * samples, (g + 1) * samples))
                    cols.extend([pos] * samples)
            for layer, (rows, cols) in plan.items():
                self.handles.append(modules[layer].register_forward_hook(
                    self._restore(clean[kind][layer], torch.tensor(rows, device=device),
                                  torch.tensor(cols, device=device))))

    @staticmethod
    def _restore(clean: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> Callable[..., Any]:
        def hook(_mod: Any, _args: Any, out: Any) -> Any:
            h = _untuple(out)
            h[rows, cols] = clean[cols].to(h.dtype)
            return out
        return hook

    def __enter__(self) -> _Patcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()


def _clean_states(model: Any, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
    """Next-token probabilities of the clean run and every layer's output and MLP output (seq × hidden)."""
    layers = _layers(model)
    clean: dict[str, list[Any]] = {"state": [None] * len(layers), "mlp": [None] * len(layers)}
    handles = []
    for i, layer in enumerate(layers):
        for kind, module in (("state", layer), ("mlp", layer.mlp)):
            def grab(_mod: Any, _args: Any, out: Any, kind: str = kind, i: int = i) -> None:
                clean[kind][i] = _untuple(out)[0].detach().clone()
            handles.append(module.register_forward_hook(grab))
    try:
        with torch.no_grad():
            probs = torch.softmax(model(input_ids=ids).logits[0, -1].float(), -1)
    finally:
        for handle in handles:
            handle.remove()
    return probs, clean


def trace_prompt(model: Any, tok: Any, edit: Edit, noise_std: float, cfg: TraceConfig, index: int) -> PromptTrace | dict[str, Any]:
    """One prompt's trace, or (with cfg.known_only) a note on why it was skipped."""
    text = edit.text
    ids_list, span = subject_range(tok, text, edit.subject)
    answer = _target_ids(tok, text, edit.old)[0]
    ids = torch.tensor([ids_list], device=next(model.parameters()).device)
    probs, clean = _clean_states(model, ids)
    top = int(probs.argmax())
    if cfg.known_only and top != answer:
        return {"id": edit.id, "prompt": text, "answer": tok.decode([answer]), "top": tok.decode([top]),
                "p_answer": float(probs[answer])}
    n_layers = len(clean["state"])
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + index)
    noise = cfg.noise_factor * noise_std * torch.randn(cfg.samples, span[1] - span[0], clean["state"][0].shape[-1],
                                                       generator=gen)
    positions = list(range(span[0], len(ids_list)))
    half = cfg.window // 2
    restores: list[dict[str, list[tuple[int, int]]]] = [{}]  # the first: corrupted, nothing restored
    for kind in KINDS:
        for pos in positions:
            for layer in range(n_layers):
                window = range(max(0, layer - half), min(n_layers, layer - (-cfg.window // 2)))
                restores.append({kind: [(layer, pos)] if kind == "state" else [(w, pos) for w in window]})
    per_group = max(1, MAX_BATCH // cfg.samples)
    scores: list[float] = []
    for first in range(0, len(restores), per_group):
        chunk = restores[first: first + per_group]
        batch = ids.repeat(len(chunk) * cfg.samples, 1)
        with _Patcher(model, noise, span, clean, chunk, cfg.samples), torch.no_grad():
            p = torch.softmax(model(input_ids=batch, logits_to_keep=1).logits[:, -1].float(), -1)[:, answer]
        scores.extend(p.view(len(chunk), cfg.samples).mean(1).tolist())
    p_corrupt, rest = scores[0], np.asarray(scores[1:]).reshape(len(KINDS), len(positions), n_layers)
    return PromptTrace(edit.id, text, [tok.decode([t]) for t in ids_list], span, tok.decode([answer]),
                       float(probs[answer]), p_corrupt, {k: rest[i].tolist() for i, k in enumerate(KINDS)})


def trace(model: Any, tok: Any, edits: Sequence[Edit], cfg: TraceConfig, model_id: str = "",
          progress: Callable[[int, PromptTrace | dict[str, Any]], None] | None = None) -> TraceResult:
    """Causal traces of every edit's prompt for its true (old) object."""
    if cfg.samples < 1 or cfg.window < 1 or cfg.noise_factor <= 0:
        raise LlmassayError("trace: samples and window must be at least 1 and the noise factor positive")
    started = time.perf_counter()
    model.eval()
    noise_std = embedding_std(model, tok, sorted({e.subject for e in edits}))
    result = TraceResult(model_id, cfg, noise_std, len(_layers(model)), [])
    for i, edit in enumerate(edits):
        outcome = trace_prompt(model, tok, edit, noise_std, cfg, i)
        (result.prompts if isinstance(outcome, PromptTrace) else result.skipped).append(outcome)
        if progress is not None:
            progress(i, outcome)
    result.seconds = time.perf_counter() - started
    return result
