"""Sample-level scorers and corpus-level aggregates, each aggregate with a 95 % CI.

Declared once here and reused by every probe (lighteval's lesson): a probe produces
per-sample values, and the aggregate that turns them into a `Metric` lives here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from llmassay.types import Metric

Z95 = 1.959963984540054


def proportion(successes: Sequence[bool | int | float]) -> Metric:
    """Mean of 0/1 outcomes with the Wilson score interval, which (unlike the normal
    approximation) stays inside [0, 1] and behaves at 0 % and 100 %."""
    n = len(successes)
    if n == 0:
        return Metric(float("nan"), float("nan"), float("nan"), 0, None, "wilson")
    p = float(np.mean(np.asarray(successes, dtype=float)))
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    stderr = math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else None
    return Metric(p, max(0.0, centre - half), min(1.0, centre + half), n, stderr, "wilson")


def bootstrap_mean(values: Sequence[float], seed: int = 0, n_boot: int = 2000) -> Metric:
    """Mean with a percentile bootstrap CI (seeded, so reruns report the same interval)."""
    arr = np.asarray(values, dtype=float)
    n = len(arr)
    if n == 0:
        return Metric(float("nan"), float("nan"), float("nan"), 0, None, "bootstrap")
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    stderr = float(arr.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return Metric(float(arr.mean()), float(low), float(high), n, stderr, "bootstrap")


def bootstrap_statistic(
    matrix: np.ndarray, statistic: Callable[[np.ndarray], float], seed: int = 0, n_boot: int = 1000
) -> Metric:
    """Any statistic of an items × columns matrix, with a percentile bootstrap over items
    (e.g. FormatSpread's spread = max − min of column means)."""
    matrix = np.asarray(matrix, dtype=float)
    n = len(matrix)
    if n == 0:
        return Metric(float("nan"), float("nan"), float("nan"), 0, None, "bootstrap")
    rng = np.random.default_rng(seed)
    draws = [statistic(matrix[rng.integers(0, n, size=n)]) for _ in range(n_boot)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return Metric(statistic(matrix), float(low), float(high), n, float(np.std(draws, ddof=1)), "bootstrap")


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for discordant counts b and c (binomial, p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def softmax(logprobs: Sequence[float]) -> np.ndarray:
    values = np.asarray(logprobs, dtype=float)
    exp = np.exp(values - values.max())
    return exp / exp.sum()


# -- sample-level scorers -------------------------------------------------------------
def argmax(values: Sequence[float]) -> int:
    """First index of the maximum, as numpy (ties go to the earlier choice)."""
    return int(np.argmax(np.asarray(values, dtype=float)))


def normalised_loglikelihoods(logprobs: Sequence[float], choices: Sequence[str]) -> list[float]:
    """lm-eval's acc_norm: log-likelihood divided by the choice's length in bytes."""
    return [lp / max(1, len(c.encode("utf-8"))) for lp, c in zip(logprobs, choices)]


_SPACES = re.compile(r"\s+")


def normalise_answer(text: str) -> str:
    """Case, surrounding whitespace and quotes, and a final full stop do not count."""
    text = _SPACES.sub(" ", text.strip().lower())
    return text.strip("\"'`").rstrip(".").strip()


def exact_match(prediction: str, reference: str) -> bool:
    return normalise_answer(prediction) == normalise_answer(reference)


_LETTER = re.compile(r"(?:^|answer is|answer:)\s*\(?([A-Z])\)?(?:$|[\s.,:;)])", re.IGNORECASE)


def parse_choice(generation: str, choices: Sequence[str]) -> int | None:
    """The choice a free-text answer names, or None when it names none.

    Letter choices (A, B, …) accept "B", "(B)", "B.", "The answer is B"; other choices are
    matched by normalised text, a leading match counting.
    """
    text = generation.strip()
    if all(len(c) == 1 and c.isalpha() for c in choices):
        match = _LETTER.search(text)
        if match:
            letter = match.group(1).upper()
            upper = [c.upper() for c in choices]
            return upper.index(letter) if letter in upper else None
        return None
    norm = normalise_answer(text)
    normed = [normalise_answer(c) for c in choices]
    if norm in normed:
        return normed.index(norm)
    starts = [i for i, c in enumerate(normed) if c and norm.startswith(c)]
    if starts:
        return max(starts, key=lambda i: len(normed[i]))  # the longest choice that matches
    return None
