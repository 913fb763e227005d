"""Experimental design before and after a run: how many items a question needs (`llmassay plan`),
and the smallest effect a finished run could have seen (minimum detectable effect).

The formulas are the normal-approximation ones of Miller (2024), "Adding Error Bars to Evals":
for a difference δ between two means whose per-item difference has variance Var(d),

    n = (z_{1-α/2} + z_{1-β})² · Var(d) / δ²          MDE = (z_{1-α/2} + z_{1-β}) · √(Var(d) / n)

with Var(d) = σ_A² + σ_B² − 2ρ σ_A σ_B when both models answer the same items (paired; ρ the
correlation of their per-item scores) and the two variances added with no covariance (and n per
model) when they do not. A proportion p has σ² = p(1 − p). K answers per item average away the
within-item part of the variance: σ² = σ_between² + σ_within² / K. Items that share a source
(a passage, a template) inflate the variance by the design effect 1 + (m − 1)·ICC for clusters of m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from llmassay.types import LlmassayError

_Z = NormalDist()


def z_sum(alpha: float, power: float) -> float:
    """z_{1-α/2} + z_{1-β}: the two-sided test's critical value plus the power's quantile."""
    if not 0 < alpha < 1:
        raise LlmassayError(f"--alpha {alpha}: a level between 0 and 1, e.g. 0.05")
    if not 0 < power < 1:
        raise LlmassayError(f"--power {power}: a probability between 0 and 1, e.g. 0.8")
    return _Z.inv_cdf(1 - alpha / 2) + _Z.inv_cdf(power)


def proportion_variance(p: float) -> float:
    if not 0 <= p <= 1:
        raise LlmassayError(f"baseline {p}: a proportion between 0 and 1")
    return p * (1 - p)


def difference_variance(var_a: float, var_b: float, correlation: float | None) -> float:
    """Var(x_A − x_B) per item: paired (same items) when `correlation` is given, else unpaired."""
    if correlation is None:
        return var_a + var_b
    if not -1 <= correlation <= 1:
        raise LlmassayError(f"--correlation {correlation}: between -1 and 1")
    return max(var_a + var_b - 2 * correlation * math.sqrt(var_a * var_b), 0.0)


def design_effect(cluster_size: float = 1.0, icc: float = 0.0) -> float:
    """1 + (m − 1)·ICC: how much shared sources inflate the variance of a mean over items."""
    if cluster_size < 1 or not 0 <= icc <= 1:
        raise LlmassayError("--cluster-size must be ≥ 1 and --icc between 0 and 1")
    return 1 + (cluster_size - 1) * icc


@dataclass(frozen=True)
class Plan:
    """What a comparison needs: items per model (the same items when paired)."""

    n: int
    effect: float
    variance: float  # Var(d) per item after resampling and clustering
    z: float  # z_{1-α/2} + z_{1-β}
    paired: bool
    formula: str

    def as_dict(self) -> dict[str, object]:
        return {"n": self.n, "effect": self.effect, "variance": self.variance, "z": self.z,
                "paired": self.paired, "formula": self.formula}


def items_needed(variance: float, effect: float, alpha: float = 0.05, power: float = 0.8,
                 paired: bool = True) -> Plan:
    """Items to detect `effect` with `power` at level `alpha`, given Var(d) per item."""
    if effect == 0 or not math.isfinite(effect):
        raise LlmassayError(f"--effect {effect}: a non-zero difference to detect, e.g. 0.03")
    z = z_sum(alpha, power)
    n = max(2, math.ceil(z * z * variance / (effect * effect)))
    formula = (f"n = (z_{{1-α/2}} + z_{{1-β}})² · Var(d) / δ² = ({z:.3f})² · {variance:.4f} / {effect:.4f}² "
               f"= {z * z * variance / (effect * effect):.1f} → {n}")
    return Plan(n, effect, variance, z, paired, formula)


def minimum_detectable_effect(variance: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference a run of n items detects with `power`: (z + z)·√(Var(d)/n)."""
    if n < 2:
        return math.inf
    return z_sum(alpha, power) * math.sqrt(variance / n)


def resampled_variance(between: float, within: float, samples: int) -> float:
    """Var of an item's mean over K answers: σ_between² + σ_within² / K."""
    if samples < 1:
        raise LlmassayError(f"--samples {samples}: at least 1 answer per item")
    return between + within / samples


def paired_binary_variance(p_a: float, p_b: float, correlation: float | None) -> float:
    """Var(d) for two proportions on the same items (correlation given) or on different ones."""
    return difference_variance(proportion_variance(p_a), proportion_variance(p_b), correlation)


@dataclass(frozen=True)
class PairedScores:
    """Two runs' per-item scores on their common items, as `plan --runs A B` reads them."""

    task: str
    metric: str
    a: list[float]
    b: list[float]
    prob_a: list[float] | None = None  # P(correct) from the choices' log-likelihoods, where rows hold them
    prob_b: list[float] | None = None

    @property
    def n(self) -> int:
        return len(self.a)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _variance(xs: list[float]) -> float:
    m = _mean(xs)
    return sum((x - m) ** 2 for x in xs) / max(len(xs) - 1, 1)


def correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson's r of two paired score lists (0 where either is constant)."""
    mx, my = _mean(xs), _mean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


def difference_variance_of(xs: list[float], ys: list[float]) -> float:
    """The per-item variance of x − y, read from data."""
    return _variance([x - y for x, y in zip(xs, ys)])


def p_correct(row: dict) -> float | None:
    """P(target) from a multiple-choice row's choice log-likelihoods (softmax over the choices)."""
    lls, target = row.get("loglikelihoods"), row.get("target")
    if not isinstance(lls, list) or not lls or not isinstance(target, int) or not 0 <= target < len(lls):
        return None
    top = max(lls)
    weights = [math.exp(v - top) for v in lls]
    return weights[target] / sum(weights)


def paired_scores(rows_a: list[dict], rows_b: list[dict], task: str, metric: str) -> PairedScores:
    """Per-item `metric` (a row field: true/false or a number) of two runs on their common ids."""
    by_id = {r.get("id"): r for r in rows_b}
    a, b, pa, pb = [], [], [], []
    for row in rows_a:
        other = by_id.get(row.get("id"))
        va, vb = row.get(metric), (other or {}).get(metric)
        if other is None or not isinstance(va, (bool, int, float)) or not isinstance(vb, (bool, int, float)):
            continue
        a.append(float(va))
        b.append(float(vb))
        pa.append(p_correct(row))
        pb.append(p_correct(other))
    if len(a) < 2:
        raise LlmassayError(f"task {task}: fewer than 2 common items with a '{metric}' value in both runs "
                            "(name the metric with --metric, e.g. acc or exact_match)")
    probs_a, probs_b = [p for p in pa if p is not None], [p for p in pb if p is not None]
    has_probs = len(probs_a) == len(probs_b) == len(a)
    return PairedScores(task, metric, a, b, probs_a if has_probs else None, probs_b if has_probs else None)


def detectable_from_interval(ci_low: float | None, ci_high: float | None, alpha: float = 0.05,
                             power: float = 0.8) -> float | None:
    """The MDE of a one-sample test read off a two-sided (1 − α) interval: its half-width is
    z_{1-α/2}·SE, so the MDE is (z_{1-α/2} + z_{1-β})·SE. None where a bound is not estimable, and
    where the interval has no width (every item scored alike: the data show no spread to size an
    effect by, which is not the same as being able to see any effect)."""
    if ci_low is None or ci_high is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return None
    if ci_high - ci_low <= 1e-12:
        return None
    se = (ci_high - ci_low) / (2 * _Z.inv_cdf(1 - alpha / 2))
    return z_sum(alpha, power) * se


def could_have_seen(ci_low: float | None, ci_high: float | None, what: str = "an effect", alpha: float = 0.05) -> str:
    """The clause a 'nothing detected' verdict carries, so it never reads as 'no effect'; `alpha`
    the level the interval was built at (e.g. Bonferroni's 0.05/m for a family of m)."""
    mde = detectable_from_interval(ci_low, ci_high, alpha)
    if mde is None:
        return "; this run could not say how large an effect it would have seen"
    return f"; this n could have seen {what} of {mde:.2g} (80 % power), not a smaller one"
