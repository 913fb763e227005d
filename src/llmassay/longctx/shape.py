"""The shape of accuracy over passage position: a quadratic fit with bootstrap CIs.

Position x runs from −1 (first passage) to +1 (last), and accuracy(x) ≈ a + b·x + c·x².
`c` is the U term (> 0: better at both ends than in the middle, Liu et al.'s
lost-in-the-middle), `b` the recency slope (> 0: better near the question, at the end).
Small models often show recency without a U; the CIs say which shape the data support.
A convex fit alone is not a U: a reader that only finds the first passage (a step down after
position 1) also fits c > 0, so a U also needs both ends above the middle (`first_gain`,
`last_gain`, each with its CI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llmassay.metrics import bootstrap_statistic
from llmassay.types import Metric


def positions(k: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, k) if k > 1 else np.zeros(1)


def quadratic(column_means: np.ndarray) -> tuple[float, float, float]:
    """(a, b, c) of the least-squares fit a + b·x + c·x² over the positions."""
    k = len(column_means)
    if k < 3:
        slope = float(column_means[-1] - column_means[0]) / 2 if k == 2 else 0.0
        return float(np.mean(column_means)), slope, 0.0
    c, b, a = np.polyfit(positions(k), column_means, 2)
    return float(a), float(b), float(c)


@dataclass(frozen=True)
class Shape:
    u_term: Metric
    recency_slope: Metric
    middle_drop: Metric  # mean of the two ends minus the middle positions' mean
    first_gain: Metric  # the first position's accuracy minus the middle positions' mean
    last_gain: Metric  # the last position's accuracy minus the middle positions' mean


def fit_shape(matrix: np.ndarray, seed: int = 0, n_boot: int = 1000) -> Shape:
    """The fit's terms on an items × positions 0/1 matrix, each with a bootstrap over items."""
    matrix = np.asarray(matrix, dtype=float)
    k = matrix.shape[1]

    def u(m: np.ndarray) -> float:
        return quadratic(m.mean(0))[2]

    def slope(m: np.ndarray) -> float:
        return quadratic(m.mean(0))[1]

    def gain(m: np.ndarray, ends: tuple[int, ...]) -> float:
        means = m.mean(0)
        middle = means[1:-1] if k > 2 else means
        return float(means[list(ends)].mean() - middle.mean())

    def stat(fn: Callable[[np.ndarray], float]) -> Metric:
        return bootstrap_statistic(matrix, fn, seed, n_boot)

    return Shape(stat(u), stat(slope), stat(lambda m: gain(m, (0, -1))), stat(lambda m: gain(m, (0,))),
                 stat(lambda m: gain(m, (-1,))))
