"""Zero-shot baseline: how well the model's own likelihood tells its text from human text.

Fast-DetectGPT's analytic curvature needs the whole next-token distribution at every
position; the Backend protocol returns only the log-probability of the tokens scored. So
the baseline here is the likelihood detector Fast-DetectGPT is measured against (mean
token log-probability under the model), with AUROC and a bootstrap CI over texts.
"""

from __future__ import annotations

import numpy as np

from llmassay.types import Metric


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
