"""Per-token distribution statistics: an optional backend capability for zero-shot detection.

Log-rank and Fast-DetectGPT need, at every token of a text, more than the log-probability
of the observed token: its rank in the model's next-token distribution, and the mean and
variance of log p under that distribution (the analytic "sampling discrepancy" of
Fast-DetectGPT with the scoring model as its own sampler). Only a backend that sees full
logits can give them (llamacpp/, hf/); `Engine.token_stats` names any other backend in a
one-line error. A request pairs text exactly as a log-likelihood request does (same
context/continuation tokenisation), so the statistics cover the tokens it would score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmassay.types import LoglikelihoodRequest

ROWS_PER_CHUNK = 16  # float64 work arrays of 16 × vocab: 34 MB for Gemma-3's 262k tokens


@dataclass(frozen=True)
class TokenStatsRequest(LoglikelihoodRequest):
    """Statistics of each continuation token given the context (an empty context: the text
    alone after the model's BOS, as Fast-DetectGPT scores it)."""


@dataclass(frozen=True)
class TokenStats:
    """Per continuation token t: log p(x_t), μ_t = E[log p], σ²_t = Var[log p] over the
    model's own next-token distribution, and the 1-based rank of x_t in it (ties: best)."""

    token_logprobs: tuple[float, ...]
    expected_logprobs: tuple[float, ...]
    logprob_variances: tuple[float, ...]
    ranks: tuple[int, ...]
    n_tokens: int
    n_context_tokens: int = 0
    n_truncated_tokens: int = 0

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TokenStats:
        """From the cache's JSON (lists back to tuples)."""
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return TokenStats(**fields)


def logit_stats(logits: np.ndarray, targets: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(log p of each target, E[log p], Var[log p], rank of each target) for rows of logits
    (row i predicts targets[i]), in float64, a few rows at a time so no full-vocabulary
    float64 copy of a long text is ever held. Tokens with probability 0 (logit −inf) add
    nothing to the mean or variance."""
    rows = np.asarray(logits)
    idx = np.asarray(targets, dtype=np.int64)
    if rows.ndim != 2 or len(rows) != len(idx):
        raise ValueError(f"{len(idx)} targets for logits of shape {rows.shape}")
    out = [np.empty(len(idx)) for _ in range(3)] + [np.empty(len(idx), dtype=np.int64)]
    for start in range(0, len(idx), ROWS_PER_CHUNK):
        sl = slice(start, start + ROWS_PER_CHUNK)
        x = rows[sl].astype(np.float64)
        x -= x.max(axis=1, keepdims=True)
        logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        finite = np.where(p > 0, logp, 0.0)
        mean = (p * finite).sum(axis=1)
        observed = logp[np.arange(len(logp)), idx[sl]]
        out[0][sl] = observed
        out[1][sl] = mean
        out[2][sl] = (p * (finite - mean[:, None]) ** 2).sum(axis=1)
        out[3][sl] = 1 + (logp > observed[:, None]).sum(axis=1)
    return out[0], out[1], out[2], out[3]


class StatsAccumulator:
    """Collects statistics from logits handed over in pieces (as a backend decodes a text
    chunk by chunk), so the logits of a long text never sit in memory all at once."""

    def __init__(self, continuation: Sequence[int]) -> None:
        self.targets = list(continuation)
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.done = 0

    def add(self, rows: np.ndarray) -> None:
        n = len(rows)
        self.parts.append(logit_stats(rows, self.targets[self.done : self.done + n]))
        self.done += n

    def result(self, n_context_tokens: int, n_truncated_tokens: int = 0) -> TokenStats:
        if self.done != len(self.targets):
            raise RuntimeError(f"statistics for {self.done} of {len(self.targets)} tokens")
        cols = [np.concatenate([p[k] for p in self.parts]) for k in range(4)]
        return TokenStats(
            token_logprobs=tuple(float(x) for x in cols[0]),
            expected_logprobs=tuple(float(x) for x in cols[1]),
            logprob_variances=tuple(float(x) for x in cols[2]),
            ranks=tuple(int(x) for x in cols[3]),
            n_tokens=len(self.targets),
            n_context_tokens=n_context_tokens,
            n_truncated_tokens=n_truncated_tokens,
        )
