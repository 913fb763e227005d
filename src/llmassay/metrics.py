"""Sample-level scorers and corpus-level aggregates, each aggregate with a 95 % CI.

Declared once here and reused by every probe (lighteval's lesson): a probe produces
per-sample values, and the aggregate that turns them into a `Metric` lives here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from llmassay.types import NOT_ESTIMABLE, Metric

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
_CHUNK_CELLS = 1_000_000  # resampled values held at once: 16 MB of indices and values, whatever n


def resamples_for(level: float, n_boot: int = 2000) -> int:
    """Bootstrap draws enough for a `level` interval: each tail must rest on at least
    MIN_TAIL_DRAWS of them. 2000 draws give 50 per tail at 95 % but about one at the
    Bonferroni level 1 − 0.05/45, where the interval's ends then move 30–50 % with the seed."""
    if not 0 < level < 1:
        raise ValueError(f"level {level} must lie strictly between 0 and 1")
    return max(n_boot, math.ceil(round(MIN_TAIL_DRAWS / ((1 - level) / 2), 6)))  # round: 1 − 0.05/45 is inexact


def bootstrap_mean(values: Sequence[float] | np.ndarray, seed: int = 0, n_boot: int = 2000, level: float = 0.95) -> Metric:
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
        (first_low, first_high), (second_low, second_high) = first.interval(), second.interval()
        low, high = max(-1.0, first_low - second_high), min(1.0, first_high - second_low)
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


def _wilson_at(p: float, n_eff: float, q: float) -> tuple[float, float]:
    """Wilson's interval for a share p at an effective sample size n_eff with critical value q
    (Student's t on the clusters' degrees of freedom): the clustered intervals' common step."""
    denom = 1 + q**2 / n_eff
    centre = (p + q**2 / (2 * n_eff)) / denom
    half = q * math.sqrt(p * (1 - p) / n_eff + q**2 / (4 * n_eff**2)) / denom
    low = 0.0 if p == 0.0 else max(0.0, centre - half)
    high = 1.0 if p == 1.0 else min(1.0, centre + half)
    return low, high


def clustered_proportion(outcomes: Sequence[Sequence[bool | int | float]], level: float = 0.95) -> Metric:
    """Share of 0/1 outcomes that come in clusters (one item scored in many cells), with
    the item as the unit: the mean of the items' shares, n = items.

    Pooling the cells as if independent overstates n: with 10 items × 20 cells of
    heterogeneous difficulty a Wilson interval on the 200 cells covers about 43 %, and a
    percentile bootstrap over the 10 items about 92 % (both simulated in the tests). This is
    Korn & Graubard's (1998) interval for clustered samples: a Wilson interval at the
    effective sample size n_eff = p(1 − p) / se², se from the spread of the item shares,
    with Student's t on items − 1 degrees of freedom in place of z. It stays in [0, 1] and
    keeps Wilson's skew near 0 and 1, where items are easy. n_eff is capped at the number of
    cells (a design effect below 1 is noise); when the share is 0 or 1 the items show no
    spread and n_eff is the number of items (as if each item were all-or-nothing: the least
    the data rule out). Items without outcomes are left out; each item weighs the same.
    """
    shares = np.asarray([np.mean(np.asarray(o, dtype=float)) for o in outcomes if len(o)], dtype=float)
    n = len(shares)
    cells = sum(len(o) for o in outcomes)
    method = "wilson at the effective n over items (Korn-Graubard)"
    if n == 0:
        return Metric(float("nan"), float("nan"), float("nan"), 0, None, method)
    p = float(shares.mean())
    se = float(shares.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    if n == 1 or p in (0.0, 1.0):
        n_eff = float(n)
    else:
        n_eff = min(float(cells), p * (1 - p) / se**2) if se else float(cells)
    low, high = _wilson_at(p, n_eff, t_critical(max(n - 1, 1), level))
    return Metric(p, low, high, n, se, method)


def cluster_robust_proportion(values: Sequence[bool | int | float], clusters: Sequence[object],
                              level: float = 0.95) -> tuple[Metric, int, float]:
    """Share of 0/1 item scores whose items share sources (a passage, a template): the item
    mean, as `proportion`, with a cluster-robust interval.

    Items from one source move together, so n items carry less information than n
    independent ones (Miller 2024, "Adding Error Bars to Evals", §2.2). The standard error is
    the cluster-robust one, se² = G/(G − 1) · Σ_g (Σ_{i∈g} (x_i − p))² / n², the interval
    Wilson's at the effective n = p(1 − p)/se² with Student's t on G − 1 degrees of freedom
    (as `clustered_proportion`). Returns (metric, clusters G, design effect = naive n / n_eff;
    1 when items are independent). With one item per cluster it is Wilson with t on n − 1 df.
    """
    x = np.asarray(values, dtype=float)
    if len(x) != len(clusters):
        raise ValueError("one cluster key per item")
    n = len(x)
    method = "wilson at the cluster-robust effective n (t on clusters - 1 df)"
    if n == 0:
        return Metric(float("nan"), float("nan"), float("nan"), 0, None, method), 0, 1.0
    keys: dict[object, int] = {}
    index = np.asarray([keys.setdefault(c, len(keys)) for c in clusters])
    g = len(keys)
    p = float(x.mean())
    sums = np.bincount(index, weights=x - p, minlength=g)
    se = math.sqrt(g / (g - 1) * float((sums**2).sum())) / n if g > 1 else None
    if p in (0.0, 1.0) or not se:
        n_eff = float(g)  # no spread to read: at least as wide as Wilson over the clusters
    else:
        n_eff = min(float(n), p * (1 - p) / se**2)
    deff = n / n_eff if n_eff > 0 else float("inf")
    low, high = _wilson_at(p, n_eff, t_critical(max(g - 1, 1), level))
    return Metric(p, low, high, n, se, method), g, deff


def cell_clustering(groups: Sequence[Sequence[bool | int | float]], unit: str = "item") -> dict[str, object]:
    """How much a probe's cells (an item asked at many positions, lengths, depths) cluster by
    their item: the number of clusters, cells, and the design effect of the pooled cell share
    (naive n / cluster-robust effective n, `cluster_robust_proportion`). It says why the
    probe's intervals take the item as the unit: a design effect of 3 means pooled cells would
    claim three times the items' information. When every cell agrees (0 % or 100 %) nothing
    can be read and the effective n is the number of items."""
    kept = [list(g) for g in groups if len(g)]
    values = [v for g in kept for v in g]
    keys = [i for i, g in enumerate(kept) for _ in g]
    _, clusters, deff = cluster_robust_proportion(values, keys)
    return {"unit": unit, "clusters": clusters, "cells": len(values), "design_effect": round(deff, 3)}


def cluster_index(clusters: Sequence[object]) -> tuple[np.ndarray, int]:
    """Each item's cluster as 0 … G − 1 (in order of first appearance), and G."""
    keys: dict[object, int] = {}
    return np.asarray([keys.setdefault(c, len(keys)) for c in clusters], dtype=int), len(keys)


def cluster_robust_variance(values: Sequence[float] | np.ndarray, clusters: Sequence[object]) -> tuple[float, int]:
    """The cluster-robust squared standard error of a mean over items,
    G/(G − 1) · Σ_g (Σ_{i∈g} (x_i − x̄))² / n², and G. With one item per cluster it is the
    usual s²/n (up to (n − 1)/n)."""
    x = np.asarray(values, dtype=float)
    index, g = cluster_index(clusters)
    if len(x) == 0 or g < 2:
        return float("nan"), g
    sums = np.bincount(index, weights=x - x.mean(), minlength=g)
    return g / (g - 1) * float((sums**2).sum()) / len(x) ** 2, g


def cluster_bootstrap_mean(values: Sequence[float] | np.ndarray, clusters: Sequence[object], seed: int = 0, n_boot: int = 2000,
                           level: float = 0.95) -> Metric:
    """Mean over items whose items share sources, with a percentile bootstrap that resamples
    whole clusters (each draw: G clusters with replacement, the mean over their items).

    An item bootstrap treats items as independent; when items of one source move together it
    is too narrow, by about the square root of the design effect (simulated in
    tests/test_cluster_bootstrap.py). Vectorised on per-cluster sums and sizes, so a draw
    costs G, not n. `stderr` is the cluster-robust one."""
    x = np.asarray(values, dtype=float)
    index, g = cluster_index(clusters)
    method = f"cluster bootstrap over {g} clusters"
    if len(x) == 0:
        return Metric(float("nan"), float("nan"), float("nan"), 0, None, method)
    sums = np.bincount(index, weights=x, minlength=g)
    sizes = np.bincount(index, minlength=g).astype(float)
    rng = np.random.default_rng(seed)
    draws, per_chunk = resamples_for(level, n_boot), max(1, _CHUNK_CELLS // g)
    means = np.concatenate([
        (lambda idx: sums[idx].sum(axis=1) / sizes[idx].sum(axis=1))(rng.integers(0, g, size=(min(per_chunk, draws - s), g)))
        for s in range(0, draws, per_chunk)])
    tail = 50 * (1 - level)
    low, high = np.percentile(means, [tail, 100 - tail])
    var, _ = cluster_robust_variance(x, clusters)
    return Metric(float(x.mean()), float(low), float(high), len(x), math.sqrt(var) if var == var else None, method)


def t_critical(df: int, level: float = 0.95) -> float:
    """Two-sided critical value of Student's t (P(|T| > t) = 1 − level) without scipy:
    Hill's (1970) Algorithm 396, within 1e-5 of the exact quantile for every df ≥ 1."""
    if df < 1 or not 0 < level < 1:
        raise ValueError(f"t_critical: df={df} must be >= 1 and level={level} inside (0, 1)")
    p, n = 1 - level, float(df)
    if df == 1:
        return math.tan(math.pi / 2 * level)
    if df == 2:
        return math.sqrt(2 / (p * (2 - p)) - 2)
    a = 1 / (n - 0.5)
    b = 48 / (a * a)
    c = ((20700 * a / b - 98) * a - 16) * a + 96.36
    d = ((94.5 / (b + c) - 3) / b + 1) * math.sqrt(a * math.pi / 2) * n
    y = (d * p) ** (2 / n)
    if y > 0.05 + a:  # the asymptotic (normal-based) branch
        x = NormalDist().inv_cdf(p / 2)
        y = x * x
        if df < 5:
            c += 0.3 * (n - 4.5) * (x + 0.6)
        c = (((0.05 * d * x - 5) * x - 7) * x - 2) * x + b + c
        y = (((((0.4 * y + 6.3) * y + 36) * y + 94.5) / c - y - 3) / b + 1) * x
        y = math.expm1(a * y * y)
    else:
        y = ((1 / (((n + 6) / (n * y) - 0.089 * d - 0.822) * (n + 2) * 3) + 0.5 / (n + 4)) * y - 1) * (n + 1) / (n + 2) + 1 / y
    return math.sqrt(n * y)


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
# What a model writes before its answer proper: "(B)", "**Paris**", '"Paris"'.
_OPENING = re.compile(r"[\s(\[*\"'`]*")
# A label and what closes it, before the option's text: "B. ", "(C) ", "2) ".
_LABEL_END = re.compile(r"\w{1,2}[.):\]]*\s*")
# "not Jupiter", "isn't Venus": an option named to be ruled out.
_NEGATED = re.compile(r"(?:\b(?:not|never)|n't)[ \t]+$", re.IGNORECASE)
# An option the prompt lists, one per line: "A. text", "(B) text", "C) text", "[D] text", "2. text".
_OPTION_LINE = re.compile(r"^[ \t]*[(\[]?(?P<label>[A-Z]|\d{1,2})[.)\]][ \t]+(?P<text>\S[^\n]*?)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class ChoiceNames:
    """The ways a written answer can name each choice: by label (A, B, … or 1, 2, …) and by text."""

    labels: dict[str, int]  # label key ("B", "2") → choice index
    kind: str | None  # how labels are spelled: "letter", "digit" (None: no labels)
    texts: tuple[tuple[re.Pattern[str], int, int], ...]  # (pattern, choice index, length of the text)


def parse_choice(generation: str, choices: Sequence[str], prompt: str | None = None) -> int | None:
    """The choice a free-text answer names, or None when it names none, or two.

    A choice is named by its label (A, B, … or 1, 2, …) and by its text. When `prompt` lists
    lettered or numbered options ("A. …", "(B) …", "C) …", "1. …"; the last such run, so a
    few-shot prompt's examples do not count), label choices are also named by the option's
    text and text choices by the option's label. In order: an "answer is X" / "answer: X"
    form; an option's text at the start of the answer (unless it names another option too,
    as "Congo or Niger" does; "Mars, not Jupiter" names Mars); a label at the start; the
    first upper-case label standing alone (a lower-case letter counts only after "answer
    is"); else the one option whose text the answer states anywhere, at word boundaries
    ("New York City" over "New York"). A label followed by another option's text ("A. True,
    False" where A reads "True, True") names two options: no parse.
    """
    names = choice_names(choices, prompt)
    text = _SPACES.sub(" ", generation.strip())
    for lead in _ANSWER_LEAD.finditer(text):  # an option's text first: "A French production …" is no label
        hit = _text_at(text, lead.end(), names)
        hit = _label_at(text, lead.end(), names, lenient=True) if hit is None else hit
        if hit is not None:
            return hit
    start = _OPENING.match(text)
    begin = start.end() if start else 0
    named = _texts_named(text, names)
    hit = _text_at(text, begin, names)
    if hit is not None:  # "Mars, not Jupiter" names Mars; "Congo or Niger" names no one option
        return hit if named <= {hit} else None
    hit = _label_at(text, begin, names, lenient=False)
    if hit is not None:  # "A. True, False" where A reads "True, True" names two options
        after = _LABEL_END.match(text, begin)
        other = _text_at(text, after.end(), names) if after else None
        return hit if other in (None, hit) else None
    hit = _first_label(text, names)
    if hit is not None:
        return hit
    return named.pop() if len(named) == 1 else None


def shown_options(prompt: str) -> list[tuple[str, str]]:
    """The options a prompt lists as (label, text), labels in sequence from A (or 1); the
    last such run of two or more, or [] when it lists none."""
    runs: list[list[tuple[str, str]]] = []
    open_run = False
    for m in _OPTION_LINE.finditer(prompt):
        label, key = m.group("label"), _label_key(m.group("label"))
        if key in ("A", "1"):
            runs.append([(label, m.group("text"))])
            open_run = True
        elif open_run and key == _next_label(_label_key(runs[-1][-1][0])):
            runs[-1].append((label, m.group("text")))
        else:
            open_run = False
    runs = [r for r in runs if len(r) >= 2]
    return runs[-1] if runs else []


def choice_names(choices: Sequence[str], prompt: str | None = None) -> ChoiceNames:
    """How an answer may name each of `choices`, reading the options `prompt` lists."""
    shown = shown_options(prompt) if prompt else []
    keys = [_label_key(c) for c in choices] if _label_kind(choices) else []
    shown_keys = [_label_key(label) for label, _ in shown]
    normed = [normalise_answer(c) for c in choices]
    if keys and shown and sorted(shown_keys) == sorted(keys) and len(set(keys)) == len(keys):
        # label choices, the prompt shows each label's text
        return _names({k: i for i, k in enumerate(keys)}, [(t, keys.index(k)) for k, (_, t) in zip(shown_keys, shown)])
    shown_texts = [normalise_answer(t) for _, t in shown]
    if shown and sorted(shown_texts) == sorted(normed) and len(set(normed)) == len(normed):
        # text choices, the prompt shows them under labels
        return _names({k: normed.index(t) for k, t in zip(shown_keys, shown_texts)}, list(zip(choices, range(len(choices)))))
    if keys:
        return _names({k: i for i, k in enumerate(keys)}, [])
    return _names({}, list(zip(choices, range(len(choices)))))


def _names(labels: dict[str, int], texts: list[tuple[str, int]]) -> ChoiceNames:
    kind = None if not labels else "digit" if all(k.isdigit() for k in labels) else "letter"
    patterns = tuple((_text_pattern(n), i, len(n)) for n, i in ((normalise_answer(t), i) for t, i in texts) if n)
    return ChoiceNames(labels, kind, patterns)


def _text_pattern(text: str) -> re.Pattern[str]:
    # A number is not part of another ("-1", "0.5", "8,000"); a word not part of a longer word.
    before = r"(?<![\w.\-])" if text[0].isdigit() else r"(?<!\w)"
    after = r"(?!\w)(?![.,]\d)" if text[-1].isdigit() else r"(?!\w)"
    return re.compile(before + r"\s+".join(map(re.escape, text.split(" "))) + after, re.IGNORECASE)


def _label_kind(choices: Sequence[str]) -> str | None:
    if choices and all(len(c) == 1 and c.isascii() and c.isalpha() for c in choices):
        return "letter"
    if choices and all(1 <= len(c) <= 2 and c.isascii() and c.isdigit() for c in choices):
        return "digit"
    return None


def _label_key(label: str) -> str:
    return str(int(label)) if label.isdigit() else label.upper()


def _next_label(key: str) -> str:
    return str(int(key) + 1) if key.isdigit() else chr(ord(key) + 1)


def _label_at(text: str, pos: int, names: ChoiceNames, lenient: bool) -> int | None:
    """The choice whose label stands at `pos` (lenient: lower case too, as after "answer is")."""
    if names.kind is None:
        return None
    token = _LABEL_TOKENS[names.kind][0 if lenient else 1]
    match = re.compile(f"(?P<label>{token})" + _AFTER).match(text, pos)
    if match is None or _is_english_word(text, match):
        return None
    return names.labels.get(_label_key(match.group("label")))


def _first_label(text: str, names: ChoiceNames) -> int | None:
    """The first upper-case label (or number) standing alone that is a valid choice."""
    if names.kind is None:
        return None
    strict = re.compile(_BEFORE + f"(?P<label>{_LABEL_TOKENS[names.kind][1]})" + _AFTER)
    for match in strict.finditer(text):
        key = _label_key(match.group("label"))
        if key in names.labels and not _is_english_word(text, match):
            return names.labels[key]
    return None


def _is_english_word(text: str, match: re.Match[str]) -> bool:
    label = match.group("label")
    return label in "AaIi" and bool(_WORD_AFTER.match(text, match.end()))


def _text_at(text: str, pos: int, names: ChoiceNames) -> int | None:
    """The choice whose text starts at `pos`; the longest when several do."""
    hits = [(length, i) for pattern, i, length in names.texts if pattern.match(text, pos)]
    if not hits:
        return None
    longest = max(length for length, _ in hits)
    found = {i for length, i in hits if length == longest}
    return found.pop() if len(found) == 1 else None


def _texts_named(text: str, names: ChoiceNames) -> set[int]:
    """The choices whose texts the answer states anywhere; a text inside a longer one's
    match ("New York" in "New York City") or right after "not" ("Mars, not Jupiter") does not count."""
    spans = [(m.start(), m.end(), i) for pattern, i, _ in names.texts for m in pattern.finditer(text)
             if not _NEGATED.search(text, 0, m.start())]
    return {i for s, e, i in spans
            if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)}

# -- quantiles ------------------------------------------------------------------------------
def min_n_for_bound(q: float, level: float = 0.95) -> int:
    """The fewest samples for which the order-statistic interval of the q-quantile has an
    upper bound: the sample maximum must exceed the quantile with probability ≥ 1 − α/2,
    i.e. 1 − q^n ≥ 1 − α/2, n ≥ ln(α/2) / ln q (368 for p99, 72 for p95 at 95 %). The lower
    bound needs the same with 1 − q (6 for the median)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile q must be in (0, 1), not {q}")
    return math.ceil(math.log((1 - level) / 2) / math.log(q) - 1e-12)


def binomial_ranks(n: int, q: float, level: float = 0.95) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) of the distribution-free interval [x_(l), x_(u)] for the
    q-quantile of n sorted i.i.d. samples: with B ~ Binomial(n, q) the number of samples
    below the quantile, P(x_(l) > ξ) = P(B < l) ≤ α/2 and P(x_(u) < ξ) = P(B ≥ u) ≤ α/2, so
    coverage is ≥ level for any continuous distribution. A rank that would fall outside
    1..n is None: no sample can bound the quantile on that side."""
    if n < 1:
        return None, None
    alpha_half = (1 - level) / 2
    k = np.arange(n + 1)
    log_pmf = (math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
               + k * math.log(q) + (n - k) * math.log1p(-q))
    pmf = np.exp(log_pmf)
    below = np.cumsum(pmf)  # below[j] = P(B ≤ j)
    at_least = np.cumsum(pmf[::-1])[::-1]  # at_least[j] = P(B ≥ j), summed from the tail: no 1 − cdf rounding
    tol = 1e-12
    lows = [rank for rank in range(1, n + 1) if below[rank - 1] <= alpha_half + tol]
    highs = [rank for rank in range(1, n + 1) if at_least[rank] <= alpha_half + tol]
    return (max(lows) if lows else None), (min(highs) if highs else None)


def quantile_ci(values: Sequence[float], q: float, level: float = 0.95) -> Metric:
    """The q-quantile (linear interpolation, as numpy and vLLM's benchmark) with the
    distribution-free order-statistic interval (ranks from Binomial(n, q)). Unlike a
    bootstrap of the percentile, whose interval can never pass the sample maximum and so
    misses a p99 most of the time with few samples, it reports a bound that the data cannot
    give as None (`NOT_ESTIMABLE`): an upper bound for the q-quantile needs
    n ≥ `min_n_for_bound(q)`."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile q must be in (0, 1), not {q}")
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return Metric(float("nan"), None, None, 0, None, "order statistic")
    lo, hi = binomial_ranks(n, q, level)
    missing = [side for side, rank in (("lower", lo), ("upper", hi)) if rank is None]
    method = f"order-statistic {level:.0%} CI (binomial ranks {lo or '-'}, {hi or '-'} of {n})"
    if missing:
        needs = min_n_for_bound(q if "upper" in missing else 1 - q, level)
        method += f"; {' and '.join(missing)} bound {NOT_ESTIMABLE} below n = {needs}"
    return Metric(float(np.percentile(x, 100 * q)), float(x[lo - 1]) if lo else None,
                  float(x[hi - 1]) if hi else None, n, None, method)


def clustered_quantile_ci(groups: Sequence[Sequence[float]], q: float, level: float = 0.95) -> Metric:
    """The q-quantile of values pooled over groups (e.g. inter-token gaps pooled over
    requests) with Woodruff's interval: the share of pooled values at or below the estimate
    has a ratio-estimator variance over groups (values within one group are correlated),
    never below the binomial one; the bounds are the pooled order statistics at q ∓ t·se
    (t with groups − 1 degrees of freedom). A bound is None (`NOT_ESTIMABLE`) where its rank
    falls outside the data or where there are fewer groups than the i.i.d. interval needs
    for it (`min_n_for_bound`): with strongly correlated groups a group counts as one value,
    and a variance estimated from a few tail exceedances is too noisy to trust (simulated
    coverage fell to 86–89 % for p95 from 12–30 requests without this rule)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile q must be in (0, 1), not {q}")
    kept = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not kept:
        return Metric(float("nan"), None, None, 0, None, "order statistic over groups")
    pooled = np.sort(np.concatenate(kept))
    n, k = len(pooled), len(kept)
    value = float(np.percentile(pooled, 100 * q))
    m = np.array([len(g) for g in kept], dtype=float)
    a = np.array([np.sum(g <= value) for g in kept], dtype=float)
    p = a.sum() / n
    var = k / (k - 1) * float(np.sum((a - p * m) ** 2)) / n**2 if k > 1 else 0.0
    var = max(var, q * (1 - q) / n)
    half = t_critical(max(k - 1, 1), level) * math.sqrt(var)
    lo_rank, hi_rank = math.floor(n * (q - half)), math.ceil(n * (q + half)) + 1
    lo = pooled[lo_rank - 1] if lo_rank >= 1 and k >= min_n_for_bound(1 - q, level) else None
    hi = pooled[hi_rank - 1] if hi_rank <= n and k >= min_n_for_bound(q, level) else None
    method = f"Woodruff {level:.0%} CI over {k} groups ({n} values, effective n {q * (1 - q) / var:.0f})"
    missing = [side for side, b in (("lower", lo), ("upper", hi)) if b is None]
    if missing:
        method += f"; {' and '.join(missing)} bound {NOT_ESTIMABLE} from {k} groups"
    return Metric(value, None if lo is None else float(lo), None if hi is None else float(hi), n, None, method)


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
    null_low, null_high = (float(x) for x in np.percentile(null, [2.5, 97.5]))
    null_metric = Metric(float(null.mean()), null_low, null_high, n, float(null.std(ddof=1)), "permutation within items")
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
