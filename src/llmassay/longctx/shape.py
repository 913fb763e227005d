"""The shape of accuracy over passage position: a quadratic fit with bootstrap CIs.

Position x runs from −1 (first passage) to +1 (last) in proportion to the passage's place
among all passages shown (x = −1 + 2(p − 1)/(passages − 1)), whichever positions were
tested, and accuracy(x) ≈ a + b·x + c·x². `c` is the U term (> 0: better at both ends
than in the middle, Liu et al.'s lost-in-the-middle), `b` the recency slope (> 0: better
near the question, at the end). Small models often show recency without a U; the CIs say
which shape the data support. A convex fit alone is not a U: a reader that only finds the
first passage (a step down after position 1) also fits c > 0, so a U also needs both ends
above the middle (`first_gain`, `last_gain`, each with its CI). The middle is the tested
positions strictly inside (neither the first nor the last passage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from llmassay.metrics import bootstrap_statistic
from llmassay.types import LlmassayError, Metric


def positions(k: int) -> np.ndarray:
    """x of k evenly spaced positions: all passages tested."""
    return np.linspace(-1.0, 1.0, k) if k > 1 else np.zeros(1)


def position_x(tested: Sequence[int], passages: int) -> np.ndarray:
    """x of the tested 1-based positions among `passages` passages: −1 first, +1 last."""
    if passages < 2 or any(not 1 <= p <= passages for p in tested):
        raise LlmassayError(f"positions {list(tested)}: each must run from 1 to passages={passages} (passages >= 2)")
    return -1.0 + 2.0 * (np.asarray(tested, dtype=float) - 1) / (passages - 1)


def quadratic(column_means: np.ndarray, x: np.ndarray | None = None) -> tuple[float, float, float]:
    """(a, b, c) of the least-squares fit a + b·x + c·x² at positions x (default: evenly spaced)."""
    k = len(column_means)
    x = positions(k) if x is None else np.asarray(x, dtype=float)
    if k < 3:
        slope = float(column_means[-1] - column_means[0]) / float(x[-1] - x[0]) if k == 2 else 0.0
        return float(np.mean(column_means)), slope, 0.0
    c, b, a = np.polyfit(x, column_means, 2)
    return float(a), float(b), float(c)


@dataclass(frozen=True)
class Shape:
    u_term: Metric
    recency_slope: Metric
    # The ends' line at each middle position minus its accuracy, averaged (with every position
    # tested: the mean of the two ends minus the middle's mean); None without both ends tested.
    middle_drop: Metric | None
    first_gain: Metric | None  # the first passage's accuracy minus the middle positions' mean
    last_gain: Metric | None  # the last passage's accuracy minus the middle positions' mean


def fit_shape(matrix: np.ndarray, x: Sequence[float] | np.ndarray | None = None, seed: int = 0, n_boot: int = 1000) -> Shape:
    """The fit's terms on an items × positions 0/1 matrix, each with a bootstrap over items.

    `x` gives each column's position (−1 the first passage, +1 the last; default: the
    columns are every passage, evenly spaced). A gain needs its end tested and at least one
    middle position; the middle drop needs both ends and a middle position.
    """
    matrix = np.asarray(matrix, dtype=float)
    xs = positions(matrix.shape[1]) if x is None else np.asarray(x, dtype=float)
    first, last = np.isclose(xs, -1.0), np.isclose(xs, 1.0)
    middle = ~(first | last)
    share = (xs[middle] + 1) / 2  # how far along from the first passage to the last

    def u(m: np.ndarray) -> float:
        return quadratic(m.mean(0), xs)[2]

    def slope(m: np.ndarray) -> float:
        return quadratic(m.mean(0), xs)[1]

    def gain(m: np.ndarray, end: np.ndarray) -> float:
        means = m.mean(0)
        return float(means[end].mean() - means[middle].mean())

    def drop(m: np.ndarray) -> float:
        means = m.mean(0)
        line = means[first].mean() + share * (means[last].mean() - means[first].mean())
        return float(np.mean(line - means[middle]))

    def stat(fn: Callable[[np.ndarray], float]) -> Metric:
        return bootstrap_statistic(matrix, fn, seed, n_boot)

    has_middle = bool(middle.any())
    return Shape(
        stat(u),
        stat(slope),
        stat(drop) if has_middle and first.any() and last.any() else None,
        stat(lambda m: gain(m, first)) if has_middle and first.any() else None,
        stat(lambda m: gain(m, last)) if has_middle and last.any() else None,
    )
