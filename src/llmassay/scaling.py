"""How a metric moves with model size: a fit against log10(parameters) with a bootstrap
over items, the inverse-scaling and U-shape flags (McKenzie et al. 2023; Wei et al. 2023).

The unit of the intervals is the item, as everywhere in llmassay. When every model answered
the same items (a per-item value for each), the bootstrap resamples items once for all
models (paired: an item that is hard for one size is hard for the others, so the slope's
CI is narrower than the models' separate CIs suggest); otherwise each model's items are
resampled on their own. The slope is per tenfold parameters. With three or more distinct
sizes a quadratic term is fitted too: its CI excluding 0 is the U-shape flag.

Only a single family gives a scaling law: across architectures (or quantisations) the fit
describes these models, not size, and `family_notes` says so in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class SizePoint:
    """One model's measurements of one metric: its parameter count and per-item values
    (item id → value; empty when the run kept none)."""

    label: str
    parameters: int
    value: float
    items: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Trend:
    """The fit of a metric against log10(parameters) and what it shows."""

    slope: float  # change of the metric per tenfold parameters
    intercept: float  # the fitted line's value at log10(parameters) = 0 (for drawing it)
    slope_ci: tuple[float, float]
    curvature: float | None  # the quadratic term (≥ 3 sizes), per (log10 parameters)²
    curvature_ci: tuple[float, float] | None
    sizes: int  # distinct parameter counts
    method: str  # how the items were resampled
    higher_is_better: bool | None  # None: neither end is better (a preference share whose ideal is 0.5)
    inverse: bool  # the metric gets worse with size: the slope's CI is wholly on the worse side
    improves: bool  # the slope's CI is wholly on the better side
    shape: str | None  # "U-shaped (worst at mid size)" / "inverted U (best at mid size)", or None
    points: int = 0  # models in the fit (more than `sizes` when some share a parameter count)

    @property
    def verdict(self) -> str:
        words = "inverse scaling" if self.inverse else "improves with size" if self.improves else "no trend detected"
        if self.higher_is_better is None and (self.slope_ci[0] > 0 or self.slope_ci[1] < 0):
            words = "rises with size" if self.slope_ci[0] > 0 else "falls with size"
        return f"{words}; {self.shape}" if self.shape else words

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def fit_trend(points: Sequence[SizePoint], higher_is_better: bool | None = True, seed: int = 0,
              n_boot: int = N_BOOT) -> Trend | None:
    """The trend over `points`, or None when it cannot be estimated: fewer than two distinct
    sizes, or a model without per-item values (no item to resample)."""
    x = np.log10(np.array([p.parameters for p in points], dtype=float))
    sizes = len(set(x.tolist()))
    if sizes < 2 or any(not p.items for p in points):
        return None
    rng = np.random.default_rng(seed)
    common = sorted(set.intersection(*(set(p.items) for p in points)))
    if len(common) >= 2 and all(len(p.items) == len(common) for p in points):
        table = np.array([[p.items[i] for p in points] for i in common], dtype=float)  # items × models
        picks = rng.integers(0, len(common), size=(n_boot, len(common)))
        boot = table[picks].mean(axis=1)  # n_boot × models
        point = table.mean(axis=0)
        method = f"paired bootstrap over the {len(common)} items every model answered ({n_boot} resamples)"
    else:
        columns = []
        for p in points:
            values = np.array(list(p.items.values()), dtype=float)
            columns.append(values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1))
        boot = np.column_stack(columns)
        point = np.array([np.mean(list(p.items.values())) for p in points])
        method = f"each model's items resampled independently ({n_boot} resamples; the models answered different items)"
    slope, slope_ci = _fit(x, point, boot, degree=1)
    curvature = curvature_ci = None
    if sizes >= 3:
        curvature, curvature_ci = _fit(x, point, boot, degree=2)
    directed = higher_is_better is not None
    worse_side = directed and (slope_ci[1] < 0 if higher_is_better else slope_ci[0] > 0)
    better_side = directed and (slope_ci[0] > 0 if higher_is_better else slope_ci[1] < 0)
    shape = None
    if curvature_ci is not None and (curvature_ci[0] > 0 or curvature_ci[1] < 0):
        if not directed:
            shape = "curved (lowest at mid size)" if curvature_ci[0] > 0 else "curved (highest at mid size)"
        else:
            dips = (curvature_ci[0] > 0) == higher_is_better  # the curve is worst in the middle
            shape = "U-shaped (worst at mid size)" if dips else "inverted U (best at mid size)"
    intercept = float(point.mean() - slope * x.mean())
    return Trend(slope, intercept, slope_ci, curvature, curvature_ci, sizes, method, higher_is_better, worse_side, better_side,
                 shape, len(points))


def _fit(x: np.ndarray, point: np.ndarray, boot: np.ndarray, degree: int) -> tuple[float, tuple[float, float]]:
    """The highest-order coefficient of a least-squares polynomial in x (centred), for the
    point estimate and each bootstrap row; its percentile CI."""
    centred = x - x.mean()
    design = np.column_stack([centred ** k for k in range(degree + 1)])
    solve = np.linalg.pinv(design)  # (degree+1) × models
    # rounded: identical columns give a slope of exactly 0, not ±1e-17 (which would "exclude 0")
    # (+ 0.0: a rounded -1e-17 is -0.0, which would print as "-0.000")
    estimate = float(np.round((solve @ point)[degree], 12)) + 0.0
    draws = np.round((solve @ boot.T)[degree], 12) + 0.0
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return estimate, (float(low), float(high))


def family_notes(architectures: Sequence[str | None], quantisations: Sequence[str | None]) -> list[str]:
    """What the size axis mixes, in plain words (empty when it is one family at one quantisation)."""
    notes = []
    archs = sorted({a for a in architectures if a})
    if len(archs) > 1:
        notes.append(f"the models are of different families ({', '.join(archs)}): a trend across them is a "
                     "comparison of these models, not a scaling law")
    if any(a is None for a in architectures):
        notes.append("a model's architecture is unknown: whether the models are one family cannot be checked")
    quants = sorted({q for q in quantisations if q})
    if len(quants) > 1:
        notes.append(f"the models use different quantisations ({', '.join(quants)}): part of any difference may be "
                     "the quantisation, not the size")
    return notes


def same_size_notes(models: Sequence[tuple[str, int | None, str | None, str | None]]) -> list[str]:
    """Models (label, parameters, architecture, quantisation) sharing a parameter count: what
    tells them apart is not size (another quantisation, another tune), said in plain words."""
    groups: dict[int, list[tuple[str, str | None, str | None]]] = {}
    for label, parameters, architecture, quantisation in models:
        if parameters:
            groups.setdefault(parameters, []).append((label, architecture, quantisation))
    notes = []
    for parameters, members in groups.items():
        if len(members) < 2:
            continue
        archs = sorted({a or "?" for _, a, _ in members})
        quants = sorted({q for _, _, q in members if q})
        differ = (f"different quantisations ({', '.join(quants)})" if len(quants) > 1
                  else "the same quantisation: another tune or build of one size")
        names = " and ".join(label for label, _, _ in members)
        notes.append(f"{names} have the same size ({parameter_text(parameters)}, "
                     f"{', '.join(archs)}) and {differ}: their difference is a comparison at one size, not a trend; "
                     "the trend fit counts them as measurements at one size")
    return notes


def parameter_text(parameters: int | None) -> str:
    """A parameter count as people say it: 135M, 1.7B."""
    if not parameters:
        return "?"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if parameters >= scale:
            return f"{parameters / scale:.3g}{unit}"
    return str(parameters)

