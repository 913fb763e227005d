"""Agreement between raters, each with its uncertainty: Cohen's κ (closed form, the same
number as scikit-learn's `cohen_kappa_score`, which is no dependency) per pair of raters on their common items with a bootstrap CI over items, and Krippendorff's α
(nominal, the `krippendorff` package) over all raters, which copes with missing labels.
Rubric scores (1–10) are ordered: quadratically weighted κ per pair (a 7 against an 8
is nearly agreement) and α at the ordinal and interval levels."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import combinations
from typing import Any

import numpy as np

JUDGE = "judge"


def cohen_kappa(x: list[str], y: list[str], seed: int = 0, n_boot: int = 2000) -> dict[str, Any]:
    """κ = (p_o − p_e) / (1 − p_e), p_e = Σ_label p_x(label)·p_y(label); its CI from κ of
    item resamples, computed for all resamples at once with the same formula. nan when both
    raters use one label only (κ undefined, as scikit-learn)."""
    labels = sorted(set(x) | set(y))
    xs, ys = np.asarray(x), np.asarray(y)
    observed = float(np.mean(xs == ys))
    chance = sum(float(np.mean(xs == v)) * float(np.mean(ys == v)) for v in labels)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(np.float64(observed - chance) / np.float64(1 - chance))
    idx = np.random.default_rng(seed).integers(0, len(xs), size=(n_boot, len(xs)))
    agree = (xs == ys).astype(float)[idx].mean(axis=1)
    expected = sum((xs == v).astype(float)[idx].mean(axis=1) * (ys == v).astype(float)[idx].mean(axis=1)
                   for v in labels)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = (agree - expected) / (1 - expected)
    finite = draws[np.isfinite(draws)]
    low, high = np.percentile(finite, [2.5, 97.5]) if len(finite) else (float("nan"), float("nan"))
    return {"kappa": value, "ci_low": float(low), "ci_high": float(high), "n": len(x),
            "observed_agreement": float(np.mean(xs == ys))}


def weighted_kappa(x: list[int], y: list[int], seed: int = 0, n_boot: int = 2000,
                   scale: tuple[int, int] = (1, 10)) -> dict[str, Any]:
    """Quadratically weighted κ of two raters' scores (on the `scale`: the grades 1–10 the
    review app and the judge's rubric give; scikit-learn's
    `cohen_kappa_score(weights="quadratic")` in closed form), 1 − mean((x−y)²) /
    (var x + var y + (mean x − mean y)²), and its bootstrap CI from the same statistic for
    all item resamples at once; nan when neither rater varies."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(1 - np.mean((xs - ys) ** 2) / (xs.var() + ys.var() + (xs.mean() - ys.mean()) ** 2))
    idx = np.random.default_rng(seed).integers(0, len(xs), size=(n_boot, len(xs)))
    bx, by = xs[idx], ys[idx]
    expected = bx.var(axis=1) + by.var(axis=1) + (bx.mean(axis=1) - by.mean(axis=1)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = 1 - ((bx - by) ** 2).mean(axis=1) / expected
    finite = draws[np.isfinite(draws)]
    low, high = np.percentile(finite, [2.5, 97.5]) if len(finite) else (float("nan"), float("nan"))
    return {"kappa": value, "ci_low": float(low), "ci_high": float(high), "n": len(x),
            "mean_abs_difference": float(np.mean(np.abs(xs - ys)))}


def krippendorff_alpha(labels: Mapping[str, Mapping[str, Any]], level: str = "nominal") -> dict[str, Any] | None:
    """α over every rater and item (missing labels allowed); None with fewer than 2 raters.
    Nominal labels are coded as categories; ordinal and interval ones are used as numbers."""
    import krippendorff

    raters = sorted(labels)
    items = sorted({i for r in raters for i in labels[r]})
    values = sorted({v for r in raters for v in labels[r].values()})
    if len(raters) < 2 or len(values) < 2:
        return None
    code = {v: k for k, v in enumerate(values)}
    data = np.full((len(raters), len(items)), np.nan)
    for i, r in enumerate(raters):
        for j, item in enumerate(items):
            if item in labels[r]:
                value = labels[r][item]
                data[i, j] = code[value] if level == "nominal" else float(value)
    pairable = int(np.sum(np.sum(~np.isnan(data), axis=0) >= 2))
    if pairable == 0:
        return None
    alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    return {"alpha": alpha, "level": level, "raters": raters, "items": pairable}



def _pairwise(humans: Mapping[str, Mapping[str, Any]], judge: Mapping[str, Any] | None,
              statistic: Callable[[list, list, int], dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """`statistic` for every pair of raters (the judge counting as one) over their ≥ 2 common items."""
    raters: dict[str, Mapping[str, Any]] = dict(humans)
    if judge:
        raters[JUDGE] = judge
    pairs = []
    for a, b in combinations(sorted(raters), 2):
        common = sorted(set(raters[a]) & set(raters[b]))
        if len(common) >= 2:
            pairs.append({"raters": [a, b], **statistic([raters[a][i] for i in common],
                                                         [raters[b][i] for i in common], seed)})
    return pairs

def agreement(humans: Mapping[str, Mapping[str, str]], judge: Mapping[str, str] | None = None,
              seed: int = 0) -> dict[str, Any]:
    """κ for every pair of raters (the judge counts as one) with ≥ 2 common items, and α
    over the humans when there are more than two of them or labels are missing."""
    out: dict[str, Any] = {"cohen_kappa": _pairwise(humans, judge, cohen_kappa, seed)}
    items = {i for r in humans.values() for i in r}
    if len(humans) > 2 or (len(humans) == 2 and any(len(r) < len(items) for r in humans.values())):
        out["krippendorff_alpha"] = krippendorff_alpha(humans)
    return out


def score_agreement(humans: Mapping[str, Mapping[str, int]], judge: Mapping[str, int] | None = None,
                    seed: int = 0) -> dict[str, Any]:
    """Weighted κ for every pair of raters of rubric scores (the judge's grades counting as
    one) with ≥ 2 common items, and α (ordinal and interval) over the humans when ≥ 2."""
    out: dict[str, Any] = {"weighted_kappa": _pairwise(humans, judge, weighted_kappa, seed)}
    if len(humans) >= 2:
        out["krippendorff_alpha"] = [a for a in (krippendorff_alpha(humans, level) for level in ("ordinal", "interval"))
                                     if a is not None]
    return out
