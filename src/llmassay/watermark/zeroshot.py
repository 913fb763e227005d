"""Zero-shot detection: does the model's own view of a text tell its text from human text?

Three detectors from one scoring model, each oriented so that a higher score means "more
likely machine-written" (Fast-DetectGPT, Bao et al. 2024; log-rank, Mitchell et al. 2023):

- `likelihood`: mean log p(x_t) — the baseline both papers compare with;
- `logrank`: −mean log rank(x_t) in the next-token distribution (rank 1: the mode);
- `fastdetectgpt`: the analytic sampling discrepancy with the scoring model as its own
  sampler, Σ_t (log p(x_t) − μ_t) / √(Σ_t σ²_t), where μ_t and σ²_t are the mean and the
  variance of log p under the model's distribution at position t. Model text sits above
  what the model expects of its own samples; human text falls near or below it.

Log-rank and Fast-DetectGPT need per-token distribution statistics (`Engine.token_stats`,
llamacpp/ and hf/); the likelihood alone works on any backend that scores text. AUROC over
texts has a bootstrap CI that resamples each class on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.backends.token_stats import TokenStats, TokenStatsRequest
from llmassay.types import LlmassayError, LoglikelihoodRequest, Metric

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine


def likelihood(s: TokenStats) -> float:
    """Mean token log-probability."""
    return float(np.mean(s.token_logprobs))


def log_rank(s: TokenStats) -> float:
    """Minus the mean log rank (log 1 = 0 for a token at the mode)."""
    return -float(np.mean(np.log(s.ranks)))


def fast_detectgpt(s: TokenStats) -> float:
    """Σ(log p − μ)/√Σσ²: the text's log-likelihood standardised against the model's own
    samples (a text of one-hot positions, Σσ² = 0, scores 0)."""
    discrepancy = float(np.sum(np.subtract(s.token_logprobs, s.expected_logprobs)))
    spread = math.sqrt(float(np.sum(s.logprob_variances)))
    return discrepancy / spread if spread > 0 else 0.0


DETECTORS: dict[str, tuple[Callable[[TokenStats], float], str]] = {
    "likelihood": (likelihood, "mean token log-probability"),
    "logrank": (log_rank, "minus the mean log rank of each token"),
    "fastdetectgpt": (fast_detectgpt, "Fast-DetectGPT analytic criterion, same model as sampler and scorer"),
}
BASELINES = tuple(DETECTORS)


def zero_shot_scores(engine: Engine, texts: Sequence[str], detectors: Sequence[str]) -> dict[str, list[float]]:
    """Each detector's score of each text, scored alone after the model's BOS. Only the
    likelihood: log-likelihood requests (any scoring backend); else per-token statistics."""
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise LlmassayError(f"zero-shot detector {unknown[0]!r} unknown (known: {', '.join(BASELINES)})")
    if not detectors:
        return {}
    if set(detectors) == {"likelihood"}:
        scored = engine.loglikelihood([LoglikelihoodRequest("", t) for t in texts])
        return {"likelihood": [r.logprob / max(1, r.n_tokens) for r in scored]}
    stats = engine.token_stats([TokenStatsRequest("", t) for t in texts])
    return {d: [DETECTORS[d][0](s) for s in stats] for d in detectors}


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann–Whitney U / n1 n2)."""
    pos, neg = np.asarray(positive, dtype=float)[:, None], np.asarray(negative, dtype=float)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def auroc_metric(positive: list[float], negative: list[float], seed: int = 0, n_boot: int = 1000) -> Metric:
    """AUROC with a percentile bootstrap that resamples each class on its own."""
    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    n = len(pos) + len(neg)
    if not len(pos) or not len(neg):
        return Metric(float("nan"), float("nan"), float("nan"), n, None, "bootstrap")
    rng = np.random.default_rng(seed)
    draws = [auroc(rng.choice(pos, len(pos)), rng.choice(neg, len(neg))) for _ in range(n_boot)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return Metric(auroc(pos, neg), float(low), float(high), n, float(np.std(draws, ddof=1)), "bootstrap")


def human_spans(text: str, lengths: list[int], seed: int = 0) -> list[str]:
    """Spans of `text` with the given character lengths, starting at random word starts (seeded)."""
    rng = np.random.default_rng(seed)
    starts = [i + 1 for i, c in enumerate(text) if c == " "]
    out = []
    for n in lengths:
        at = starts[int(rng.integers(0, len(starts)))]
        at = min(at, max(0, len(text) - n))
        out.append(text[at : at + n])
    return out


def compare(engine: Engine, machine: Sequence[str], human: Sequence[str], detectors: Sequence[str],
            seed: int = 0) -> dict[str, Any]:
    """Each detector's score of every text and its AUROC (machine vs human) with a CI."""
    texts = [" " + t.strip() for t in [*machine, *human]]
    scores = zero_shot_scores(engine, texts, detectors)
    n = len(machine)
    return {"scores": scores,
            "auroc": {d: auroc_metric(v[:n], v[n:], seed=seed).as_dict() for d, v in scores.items()}}
