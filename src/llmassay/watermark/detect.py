"""The z-test on green tokens, with only token ids (no model weights).

z = (|s|_G - gamma T) / sqrt(T gamma (1 - gamma)) over the T scored positions (each
token after the first `width`). A repeated (context, token) pair — "the the the", a
list format — is green or red every time it recurs, which breaks the independence the
z-test assumes (lm-watermarking #20): by default each distinct pair counts once, and
the count over all positions is reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from llmassay.watermark.scheme import WatermarkConfig, context_seeds, is_green

Z_DEFAULT = 4.0


@dataclass(frozen=True)
class Detection:
    """One text's test. `*_all` count every position, the others each distinct (context, token) pair once."""

    n_scored: int
    green: int
    z: float
    p_value: float
    green_fraction: float
    n_scored_all: int
    green_all: int
    z_all: float
    p_value_all: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Windows:
    """A token sequence's scored positions: the distinct contexts (hashed once per key),
    which context each position has, and the token at each position."""

    contexts: np.ndarray  # (m, width) distinct contexts
    inverse: np.ndarray  # (T,) row of `contexts` for each scored position
    tokens: np.ndarray  # (T,) uint64
    first: np.ndarray  # (T,) bool: the first occurrence of its (context, token) pair

    @staticmethod
    def of(ids: Sequence[int] | np.ndarray, width: int) -> Windows:
        arr = np.asarray(ids, dtype=np.int64)
        n = len(arr) - width
        if n <= 0:
            empty = np.zeros(0, dtype=np.int64)
            return Windows(np.zeros((0, width), dtype=np.int64), empty, empty.astype(np.uint64), empty.astype(bool))
        ctx = np.lib.stride_tricks.sliding_window_view(arr, width + 1)  # (T, width + 1): context, token
        _, first_idx = np.unique(ctx, axis=0, return_index=True)
        first = np.zeros(n, dtype=bool)
        first[first_idx] = True
        contexts, inverse = np.unique(ctx[:, :width], axis=0, return_inverse=True)
        return Windows(contexts, inverse.reshape(-1), arr[width:].astype(np.uint64), first)

    def green(self, cfg: WatermarkConfig) -> np.ndarray:
        if not len(self.tokens):
            return np.zeros(0, dtype=bool)
        seeds = context_seeds(cfg.key, self.contexts)
        return is_green(seeds[self.inverse], self.tokens, cfg.threshold)


def z_score(green: int, n: int, gamma: float) -> float:
    if n <= 0:
        return 0.0
    return (green - gamma * n) / math.sqrt(n * gamma * (1 - gamma))


def p_normal(z: float) -> float:
    """One-sided p-value of z under N(0, 1) (what Kirchenbauer et al. report)."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def score_green(green: np.ndarray, first: np.ndarray, gamma: float) -> Detection:
    g_all, n_all = int(green.sum()), len(green)
    g, n = int(green[first].sum()), int(first.sum())
    z, z_all = z_score(g, n, gamma), z_score(g_all, n_all, gamma)
    return Detection(n, g, z, p_normal(z), g / n if n else 0.0, n_all, g_all, z_all, p_normal(z_all))


def detect_ids(ids: Sequence[int] | np.ndarray, cfg: WatermarkConfig) -> Detection:
    """The z-test of one token sequence under `cfg`."""
    win = Windows.of(ids, cfg.width)
    return score_green(win.green(cfg), win.first, cfg.gamma)


def green_needed(n: int, gamma: float, fpr: float) -> int:
    """The fewest green tokens among `n` scored ones that flag a text at a one-sided
    false-positive rate <= `fpr`: the smallest k with P(G >= k) <= fpr, G ~ Binomial(n,
    gamma), from the exact tail (n + 1 when even n green tokens are too likely)."""
    from scipy.stats import binom

    if n <= 0:
        return 1
    k = int(binom.isf(fpr, n, gamma)) + 1
    while k > 0 and binom.sf(k - 2, n, gamma) <= fpr:
        k -= 1
    while k <= n and binom.sf(k - 1, n, gamma) > fpr:
        k += 1
    return min(k, n + 1)


def z_threshold(n: int, gamma: float, fpr: float) -> float:
    """The z a text of `n` scored tokens must *reach* (z >= it; see `flagged`) for a one-sided
    false-positive rate <= `fpr`: the z of `green_needed` green tokens, from the exact
    binomial tail, because the normal approximation's z = 4 is not calibrated for short
    texts (MarkLLM #32, synthid-text #48). A text one green token short has a z below it."""
    k = green_needed(n, gamma, fpr)
    return z_score(k, n, gamma) if 0 < n and k <= n else math.inf


def flagged(detection: Detection, gamma: float, fpr: float) -> bool:
    """Whether a text is watermarked at false-positive rate `fpr`: its green count among the
    distinct scored pairs reaches `green_needed`, compared as integers, so the realised rate
    is exactly P(G >= k) (a `z > z_threshold` test needed one green token more)."""
    return detection.n_scored > 0 and detection.green >= green_needed(detection.n_scored, gamma, fpr)


def thresholds(gamma: float, fpr: float, lengths: Sequence[int] = (16, 32, 64, 128, 200, 256, 512, 1024)) -> dict[int, float]:
    """Per-length z thresholds (to reach) for a chosen false-positive rate."""
    return {n: z_threshold(n, gamma, fpr) for n in lengths}


def predicted_z(green_fraction: float, n: int, gamma: float) -> float:
    """z ≈ sqrt(T) (g - gamma) / sqrt(gamma (1 - gamma)) for T tokens at green fraction g."""
    return math.sqrt(n) * (green_fraction - gamma) / math.sqrt(gamma * (1 - gamma))


def tokens_needed(green_fraction: float, gamma: float, z: float = Z_DEFAULT) -> float:
    """The T at which a text with green fraction g reaches z: T = z² gamma (1 - gamma) / (g - gamma)²."""
    if green_fraction <= gamma:
        return math.inf
    return z * z * gamma * (1 - gamma) / (green_fraction - gamma) ** 2
