"""Sample-level scorers and corpus-level aggregates, each aggregate with a 95 % CI.

Declared once here and reused by every probe (lighteval's lesson): a probe produces
per-sample values, and the aggregate that turns them into a `Metric` lives here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
    # At 0 % or 100 % the bound is exactly 0 or 1; the formula leaves rounding dust (1.7e-18).
    low = 0.0 if p == 0.0 else max(0.0, centre - half)
    high = 1.0 if p == 1.0 else min(1.0, centre + half)
    return Metric(p, low, high, n, stderr, "wilson")


MIN_TAIL_DRAWS = 50  # bootstrap draws beyond each end of an interval, at the least
_CHUNK_CELLS = 4_000_000  # resampled values held in memory at once


def resamples_for(level: float, n_boot: int = 2000) -> int:
    """Bootstrap draws enough for a `level` interval: each tail must rest on at least
    MIN_TAIL_DRAWS of them. 2000 draws give 50 per tail at 95 % but about one at the
    Bonferroni level 1 − 0.05/45, where the interval's ends then move 30–50 % with the seed."""
    if not 0 < level < 1:
        raise ValueError(f"level {level} must lie strictly between 0 and 1")
    return max(n_boot, math.ceil(round(MIN_TAIL_DRAWS / ((1 - level) / 2), 6)))  # round: 1 − 0.05/45 is inexact


def bootstrap_mean(values: Sequence[float], seed: int = 0, n_boot: int = 2000, level: float = 0.95) -> Metric:
    """Mean with a percentile bootstrap CI (seeded, so reruns report the same interval);
    `level` above 0.95 for a family of comparisons (e.g. Bonferroni: 1 − 0.05/m), with as
    many more draws as that level needs (`resamples_for`)."""
    arr = np.asarray(values, dtype=float)
    n = len(arr)
    if n == 0:
        return Metric(float("nan"), float("nan"), float("nan"), 0, None, "bootstrap")
    rng = np.random.default_rng(seed)
    draws, per_chunk = resamples_for(level, n_boot), max(1, _CHUNK_CELLS // n)
    means = np.concatenate([arr[rng.integers(0, n, size=(min(per_chunk, draws - start), n))].mean(axis=1)
                            for start in range(0, draws, per_chunk)])
    tail = 2.5 if level == 0.95 else 50 * (1 - level)  # exactly 2.5: stored regression outputs stay equal
    low, high = np.percentile(means, [tail, 100 - tail])
    stderr = float(arr.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return Metric(float(arr.mean()), float(low), float(high), n, stderr, "bootstrap")


def paired_gap(differences: Sequence[float], first: Metric, second: Metric, seed: int = 0, level: float = 0.95) -> Metric:
    """Mean of paired per-item differences (first − second) with a bootstrap CI over items.
    When no item differs (every difference equal, e.g. 0 % vs 0 %) the bootstrap has zero
    width, which would claim certainty from a handful of items; the CI is then the
    conservative difference of the two Wilson intervals."""
    gap = bootstrap_mean(differences, seed, level=level)
    if gap.n and gap.ci_low == gap.ci_high:
        low, high = max(-1.0, first.ci_low - second.ci_high), min(1.0, first.ci_high - second.ci_low)
        return Metric(gap.value, min(low, gap.value), max(high, gap.value), gap.n, gap.stderr,
                      "no discordant items: difference of Wilson bounds")
    return gap


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


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (in the given order): a family of tests against one
    baseline keeps its chance of any false "significant" at α."""
    m = len(p_values)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def sign_flip_p(diffs: Sequence[float], seed: int = 0, n_perm: int = 20_000, exact_up_to: int = 16) -> tuple[float, float]:
    """Two-sided paired test of mean difference 0: the share of sign flips whose |sum| reaches
    the observed one. Exact over all 2^n flips when n (non-zero differences) is small, else
    seeded Monte Carlo. Returns (p, the smallest p this n can give), because with few pairs
    no gap can reach a corrected level, whatever a bootstrap CI says."""
    d = np.asarray([x for x in diffs if x != 0], dtype=float)
    n = len(d)
    if n == 0:
        return 1.0, 1.0
    observed = abs(d.sum()) * (1 - 1e-9)  # ties in float sums count as reaching it
    if n <= exact_up_to:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return float(np.mean(np.abs(signs @ d) >= observed)), 2.0 / 2**n
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_perm, n))
    return float((np.sum(np.abs(signs @ d) >= observed) + 1) / (n_perm + 1)), max(2.0 / 2**n, 1 / (n_perm + 1))


def holm_reject(pvalues: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down rejections (family-wise error ≤ alpha, never weaker than Bonferroni):
    a test is rejected when its Holm-adjusted p is below alpha."""
    return [p < alpha for p in holm(pvalues)]


def softmax(logprobs: Sequence[float]) -> np.ndarray:
    values = np.asarray(logprobs, dtype=float)
    exp = np.exp(values - values.max())
    return exp / exp.sum()


# -- sample-level scorers -------------------------------------------------------------
def argmax(values: Sequence[float]) -> int:
    """First index of the maximum, as numpy (ties go to the earlier choice)."""
    return int(np.argmax(np.asarray(values, dtype=float)))


def normalised_loglikelihoods(logprobs: Sequence[float], choices: Sequence[str]) -> list[float]:
    """lm-eval's acc_norm: log-likelihood divided by the choice's length in characters
    (not tokens, so the score does not depend on the tokenizer)."""
    return _per_length(logprobs, [len(c) for c in choices])


def byte_normalised_loglikelihoods(logprobs: Sequence[float], choices: Sequence[str]) -> list[float]:
    """lm-eval's acc_bytes: log-likelihood divided by the choice's length in UTF-8 bytes,
    which differs from acc_norm only on non-ASCII choices."""
    return _per_length(logprobs, [len(c.encode("utf-8")) for c in choices])


def _per_length(logprobs: Sequence[float], lengths: Sequence[int]) -> list[float]:
    # An empty choice counts as length 1: lm-eval would divide by zero.
    return [lp / max(1, n) for lp, n in zip(logprobs, lengths)]


_SPACES = re.compile(r"\s+")


def normalise_answer(text: str) -> str:
    """Case, surrounding whitespace and quotes, and a final full stop do not count."""
    text = _SPACES.sub(" ", text.strip().lower())
    return text.strip("\"'`").rstrip(".").strip()


def exact_match(prediction: str, reference: str) -> bool:
    return normalise_answer(prediction) == normalise_answer(reference)


# -- reading a written answer ------------------------------------------------------------
# "The answer is B", "Answer: (2)", "the correct option is c": an explicit answer wins over
# any other label in the text.
_ANSWER_LEAD = re.compile(
    r"\b(?:answer|option|choice)\s*(?::|(?:is|would be|should be|must be|will be)\b\s*:?)\s*"
    r"(?:(?:option|choice|letter)\s+)?[(\[*\"'`]*",
    re.IGNORECASE,
)
# A label stands alone: not inside a word, a number ("0.2", "2.5") or a contraction ("I'm").
_BEFORE = r"(?<![\w'.\-])"
_AFTER = r"(?=$|[\s,;:!?)\]*]|[.'\"`](?!\w))"
_LABEL_TOKENS = {"letter": (r"[A-Za-z]", r"[A-Z]"), "digit": (r"\d{1,2}", r"\d{1,2}")}
# "A" and "I" are also English words: "A lot of people say C", "I think B" (but "A is right").
_WORD_AFTER = re.compile(r"[ \t]+(?!is\b)[a-z]")


def parse_choice(generation: str, choices: Sequence[str]) -> int | None:
    """The choice a free-text answer names, or None when it names none.

    Label choices (A, B, … or 1, 2, …): an "answer is X" / "answer: X" form first, else the
    first upper-case letter (or number) standing alone that is a valid choice; a lower-case
    letter counts only after "answer is". Other choices are matched by normalised text at
    the start of the answer (or after "answer is"), ending at a word boundary.
    """
    kind = _label_kind(choices)
    if kind is not None:
        return _parse_label(generation, choices, kind)
    return _parse_text(generation, choices)


def _label_kind(choices: Sequence[str]) -> str | None:
    if choices and all(len(c) == 1 and c.isascii() and c.isalpha() for c in choices):
        return "letter"
    if choices and all(1 <= len(c) <= 2 and c.isascii() and c.isdigit() for c in choices):
        return "digit"
    return None


def _parse_label(text: str, choices: Sequence[str], kind: str) -> int | None:
    keys = [_label_key(c) for c in choices]
    lenient_token, strict_token = _LABEL_TOKENS[kind]
    lenient = re.compile(f"(?P<label>{lenient_token})" + _AFTER)  # right after "answer is"
    strict = re.compile(_BEFORE + f"(?P<label>{strict_token})" + _AFTER)
    explicit = (lenient.match(text, lead.end()) for lead in _ANSWER_LEAD.finditer(text))
    for match in [m for m in explicit if m] + list(strict.finditer(text)):
        key = _label_key(match.group("label"))
        if key in keys and not _is_english_word(text, match):
            return keys.index(key)
    return None


def _label_key(label: str) -> str:
    return str(int(label)) if label.isdigit() else label.upper()


def _is_english_word(text: str, match: re.Match[str]) -> bool:
    label = match.group("label")
    return label in "AaIi" and bool(_WORD_AFTER.match(text, match.end()))


def _parse_text(text: str, choices: Sequence[str]) -> int | None:
    normed = [normalise_answer(c) for c in choices]
    patterns = [re.compile(re.escape(c) + r"(?!\w)") if c else None for c in normed]
    norm = normalise_answer(text)
    for start in [lead.end() for lead in _ANSWER_LEAD.finditer(norm)] + [0]:
        hits = [i for i, p in enumerate(patterns) if p is not None and p.match(norm, start)]
        if hits:
            return max(hits, key=lambda i: len(normed[i]))  # "New York City" over "New York"
    return None


# -- spread between prompt variants -----------------------------------------------------
@dataclass(frozen=True)
class SpreadResult:
    """Best − worst variant, with what interchangeable variants would show.

    `metric.value` is the observed spread (max − min of per-variant means, FormatSpread's
    number). It is biased upwards: with interchangeable variants it is the range of noise.
    So its CI is built to be honest about that: the lower end is the inversion of the
    permutation test (observed − the 97.5th percentile of the null spread, floored at 0),
    so it reaches 0 exactly when the spread is within what noise gives; the upper end is the
    97.5th percentile of a bootstrap over items that re-picks best and worst in every
    resample (picking them once on the full data understates the CI). `null` is the spread
    expected under no effect: variant labels shuffled within each item (mean, with the
    2.5–97.5 % range of those shuffles); `p_value` the share of shuffles at least as wide as
    observed, +1 smoothed.
    """

    metric: Metric
    null: Metric
    p_value: float
    best: str
    worst: str

    @property
    def excess(self) -> float:
        """Observed spread beyond the noise-only expectation (≈ 0 when variants are alike)."""
        return self.metric.value - self.null.value


def spread_with_null(
    matrix: np.ndarray, names: Sequence[str], seed: int = 0, n_boot: int = 1000, n_perm: int = 1000
) -> SpreadResult:
    """Spread of an items × variants score matrix (e.g. 0/1 correct), its null and p-value."""
    matrix = np.asarray(matrix, dtype=float)
    n, n_var = matrix.shape if matrix.ndim == 2 else (0, 0)
    if n == 0 or n_var == 0:
        nan = Metric(float("nan"), float("nan"), float("nan"), n, None, "spread")
        return SpreadResult(nan, nan, float("nan"), "", "")
    means = matrix.mean(0)
    best, worst = int(means.argmax()), int(means.argmin())
    observed = float(means[best] - means[worst])
    if n_var < 2:
        zero = Metric(0.0, 0.0, 0.0, n, 0.0, "spread")
        return SpreadResult(zero, zero, 1.0, names[best], names[worst])
    rng = np.random.default_rng(seed)
    boot = _ranges(rng.multinomial(n, np.full(n, 1 / n), size=n_boot) @ matrix / n)
    null = _null_ranges(matrix, rng, n_perm)
    p_value = float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_perm))
    low = max(0.0, observed - float(np.percentile(null, 97.5)))
    high = max(observed, float(np.percentile(boot, 97.5)))
    metric = Metric(observed, low, high, n, float(np.std(boot, ddof=1)), "bootstrap re-picked; low end: permutation")
    null_metric = Metric(
        float(null.mean()), *(float(x) for x in np.percentile(null, [2.5, 97.5])), n, float(null.std(ddof=1)),
        "permutation within items",
    )
    return SpreadResult(metric, null_metric, p_value, names[best], names[worst])


def _ranges(column_means: np.ndarray) -> np.ndarray:
    return column_means.max(axis=-1) - column_means.min(axis=-1)


def _null_ranges(matrix: np.ndarray, rng: np.random.Generator, n_perm: int, chunk_cells: int = 4_000_000) -> np.ndarray:
    """Spreads with the variant labels shuffled independently within each item, in chunks
    so that large matrices do not need n_perm copies in memory at once."""
    per_chunk = max(1, chunk_cells // matrix.size)
    out = []
    for start in range(0, n_perm, per_chunk):
        k = min(per_chunk, n_perm - start)
        shuffled = rng.permuted(np.broadcast_to(matrix, (k, *matrix.shape)), axis=2)
        out.append(_ranges(shuffled.mean(axis=1)))
    return np.concatenate(out)
