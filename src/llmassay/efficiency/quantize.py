"""Quantisation sweep: variants of a GGUF made with llama.cpp's quantiser (through
llama-cpp-python), each measured against its source.

What a variant loses is measured as llama.cpp's `llama-perplexity --kl-divergence` does:
on a fixed text, the KL divergence of the variant's next-token distribution from the
source's (mean over positions), how often both put the same token on top, and Δp, the
change in probability of the text's actual next token. Then accuracy (Wilson CI) and
brittleness (FormatSpread spread, bootstrap CI) on a task, and the file size as cost.

The bundled GGUFs are already 4-bit: a "q8_0" made from them holds the 4-bit weights in
8 bits and cannot recover what the first quantisation lost; its divergence is measured
against the 4-bit source, not against the original model. `source_note` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmassay.metrics import bootstrap_mean
from llmassay.types import LlmassayError, Metric

DEFAULT_TYPES = ("q8_0", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k")
HIGH_PRECISION = {0, 1, 32}  # llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_BF16
TEXT_TOKENS = 256


def ftype_of(name: str) -> int:
    from llmassay.backends import llama_internals

    value = llama_internals.ftype(name)
    if value is None:
        known = llama_internals.ftype_names()
        raise LlmassayError(f"quantize-sweep: --types: unknown type {name!r} (known: {', '.join(known)})")
    return value


def quantize(source: Path, target: Path, qtype: str, threads: int = 0) -> Path:
    """`target` made from `source` as `qtype` (reused when it already exists)."""
    from llmassay.backends import llama_internals

    if target.exists():
        return target
    tmp = target.with_suffix(".partial")
    # allow_requantize: the source may itself be quantised (see the module docstring)
    rc = llama_internals.quantize_file(str(source), str(tmp), ftype_of(qtype), threads)
    if rc != 0:
        tmp.unlink(missing_ok=True)
        raise LlmassayError(f"quantize-sweep: llama.cpp could not quantise {source.name} to {qtype} (code {rc})")
    tmp.rename(target)
    return target


def file_type(path: Path) -> int | None:
    """The GGUF's `general.file_type` (a llama_ftype), from its metadata."""
    from llmassay.backends import llama_internals

    llm = llama_internals.load_vocab(str(path))
    value = llm.metadata.get("general.file_type")
    return int(value) if value is not None else None


def source_note(ftype: int | None) -> str:
    if ftype in HIGH_PRECISION:
        return "source is 16/32-bit: every variant is measured against the unquantised model"
    return ("source is already quantised (llama_ftype %s): re-quantising it upward (e.g. q8_0) cannot recover "
            "quality the first quantisation lost; divergences are measured against this quantised source, "
            "not the original model" % ftype)


@dataclass(frozen=True)
class Divergence:
    kl: Metric  # nats, mean over positions
    same_top: Metric  # share of positions with the same top-1 token
    delta_p: Metric  # mean p_variant(next) − p_source(next)

    def as_dict(self) -> dict[str, Any]:
        return {"kl": self.kl.as_dict(), "same_top": self.same_top.as_dict(), "delta_p": self.delta_p.as_dict()}


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def next_token_logprobs(model: Path, tokens: list[int], n_ctx: int = 512) -> np.ndarray:
    """log p(· | tokens[:i+1]) for every position i: a positions × vocab array."""
    from llmassay.backends.llama_load import open_llama

    llm = open_llama(str(model), n_ctx=n_ctx, logits_all=True, verbose=False, seed=0)
    llm.eval(tokens)
    return _log_softmax(np.asarray(llm.scores[: len(tokens)], dtype=np.float64))


def divergence(source_lp: np.ndarray, variant_lp: np.ndarray, tokens: list[int], seed: int = 0) -> Divergence:
    """KL(source ‖ variant), same-top-token share and Δp per position; CIs bootstrap over
    positions (neighbouring positions are correlated, so the intervals are optimistic)."""
    p = np.exp(source_lp)
    kl = (p * (source_lp - variant_lp)).sum(axis=1)
    same = (source_lp.argmax(axis=1) == variant_lp.argmax(axis=1)).astype(float)
    nxt = np.asarray(tokens[1:])
    rows = np.arange(len(nxt))
    dp = np.exp(variant_lp[rows, nxt]) - np.exp(source_lp[rows, nxt])
    return Divergence(bootstrap_mean(kl.tolist(), seed), bootstrap_mean(same.tolist(), seed),
                      bootstrap_mean(dp.tolist(), seed))


def fixed_text_tokens(model: Path, n_tokens: int = TEXT_TOKENS) -> list[int]:
    """The first `n_tokens` tokens of the bundled prose_continue passages (public-domain
    novels, see its ATTRIBUTION.md), one after another: the same text for every variant."""
    from llmassay.backends import llama_internals
    from llmassay.tasks.loader import load_task

    text = "\n\n".join(f"{s.prompt} {s.target}" for s in load_task("prose_continue").samples)
    llm = llama_internals.load_vocab(str(model))
    return llm.tokenize(text.encode("utf-8"), add_bos=True)[:n_tokens]


def quantize_logged(source: Path, target: Path, qtype: str, threads: int = 0) -> tuple[Path, str]:
    """`quantize`, with llama.cpp's log captured: returns the fallback note it printed
    (k-quants need rows divisible by 256; narrower tensors fall back to another type)."""
    import re

    from llmassay.backends.llamacpp import _captured_stderr

    with _captured_stderr() as log:
        path = quantize(source, target, qtype, threads)
    found = re.search(r"(\d+) of (\d+) tensor\(s\) required fallback", log.getvalue())
    return path, f"{found.group(1)} of {found.group(2)} tensors fell back to another type" if found else ""


@dataclass
class Variant:
    qtype: str
    path: Path
    size_mb: float
    divergence: Divergence
    fallback: str = ""
    metrics: dict[str, Metric] | None = None  # accuracy / brittleness from the task run

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.qtype, "path": str(self.path), "size_mb": self.size_mb, "fallback": self.fallback,
                **self.divergence.as_dict(), "metrics": {k: m.as_dict() for k, m in (self.metrics or {}).items()}}


def make_variants(source: Path, types: tuple[str, ...], folder: Path, n_tokens: int = TEXT_TOKENS) -> list[Variant]:
    """The source itself (divergence 0 by construction) and one variant per type."""
    for t in types:
        ftype_of(t)  # every type checked before any work
    folder.mkdir(parents=True, exist_ok=True)
    tokens = fixed_text_tokens(source, n_tokens)
    source_lp = next_token_logprobs(source, tokens)[:-1]
    out = [Variant("source", source, source.stat().st_size / 1e6, divergence(source_lp, source_lp, tokens))]
    for t in types:
        path, note = quantize_logged(source, folder / f"{source.stem}-{t}.gguf", t)
        lp = next_token_logprobs(path, tokens)[:-1]
        out.append(Variant(t, path, path.stat().st_size / 1e6, divergence(source_lp, lp, tokens), note))
    return out


TASK_METRICS = (("accuracy", "acc"), ("accuracy", "exact_match"), ("brittleness", "spread"),
                ("efficiency", "decode_tps"), ("efficiency", "energy_wh_per_1k"))


def score_variants(variants: list[Variant], task: str, limit: int | None, folder: Path,
                   brittleness: bool = True, seed: int = 0, perturbations: str | None = None,
                   efficiency: bool = False, model_args: dict[str, Any] | None = None) -> None:
    """Accuracy (and brittleness spread; with `efficiency`, decode tokens/s and energy) of
    every variant on `task`, through `evaluate`."""
    from rich.console import Console

    from llmassay.evaluation import RunConfig, evaluate
    from llmassay.types import Metric as M

    probes = ["accuracy"] + (["brittleness"] if brittleness else []) + (["efficiency"] if efficiency else [])
    options = {"brittleness.perturbations": perturbations} if brittleness and perturbations else {}
    for v in variants:
        out = evaluate(RunConfig(model=f"llamacpp/{v.path}", tasks=[task], probes=probes, limit=limit, seed=seed,
                                 model_args=dict(model_args or {}), probe_options=options,
                                 output_path=str(folder / "runs" / v.qtype)), console=Console(stderr=True, quiet=True))
        found: dict[str, Metric] = {}
        for probe, name in TASK_METRICS:
            m = out.results["results"][task].get(probe, {}).get(name)
            if m is not None:
                found[f"{probe}.{name}"] = M(**{k: m[k] for k in ("value", "ci_low", "ci_high", "n", "stderr", "method")})
        v.metrics = found
