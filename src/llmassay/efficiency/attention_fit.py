"""Prefill time against context length, fitted to time(n) = a + b·n + c·n² by least squares,
with a bootstrap over repeats.

Why this shape: a transformer's prefill of n tokens costs a fixed part (a: the call, the
output row), a part linear in n (b: every token goes through the embeddings, the attention
projections and the MLP) and the attention scores, n × (cells attended) per layer: n² for
full attention, n × window for sliding-window layers (linear again). The quadratic term c is
the measurable trace of full attention; per token, time/n = a/n + b + c·n.

The unit resampled is the repeat: every repeat timed each length once, so the bootstrap
draws, within each length, that length's repeats with replacement (stratified by n) and
refits. With three repeats the interval is only as good as three draws per length allow:
it says how stable the fit is across these repeats, not across machines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from llmassay.metrics import bootstrap_mean
from llmassay.types import LlmassayError

N_BOOT = 2000
LEVEL = 0.95
_SCALE = 1000.0  # n in thousands inside the fit: the n² column stays near 1, not 10⁷


@dataclass(frozen=True)
class PerToken:
    """Mean seconds per prompt token at one length, with a bootstrap CI over its repeats."""

    n: int
    seconds: float
    ci: tuple[float, float]
    repeats: int


@dataclass(frozen=True)
class CostFit:
    """time(n) = a + b·n + c·n² (seconds; b in s per token, c in s per token²) with 95 % CIs,
    and the share of the fitted time at `n_ref` that the n² term accounts for."""

    a: float
    b: float
    c: float
    a_ci: tuple[float, float]
    b_ci: tuple[float, float]
    c_ci: tuple[float, float]
    n_ref: int
    quadratic_share: float  # c·n_ref² / time(n_ref)
    quadratic_share_ci: tuple[float, float]
    per_token: tuple[PerToken, ...]
    method: str

    def time_at(self, n: float) -> float:
        return self.a + self.b * n + self.c * n * n

    @property
    def c_excludes_zero(self) -> bool:
        return self.c_ci[0] > 0 or self.c_ci[1] < 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_cost(ns: Sequence[int], seconds: Sequence[float], n_ref: int | None = None, seed: int = 0,
             n_boot: int = N_BOOT) -> CostFit:
    """Least squares of `seconds` on (1, n, n²) over every timed prefill (one per length and
    repeat); percentile CIs from `n_boot` refits with each length's repeats resampled."""
    n_arr, t_arr = np.asarray(ns, dtype=float), np.asarray(seconds, dtype=float)
    if n_arr.shape != t_arr.shape or not len(n_arr):
        raise LlmassayError("attention cost fit: one time per prefill is needed (lengths and times differ in number)")
    lengths = sorted(set(int(n) for n in n_arr))
    if len(lengths) < 3:
        raise LlmassayError(f"attention cost fit: a + b·n + c·n² needs at least 3 distinct context lengths, "
                            f"not {len(lengths)} ({', '.join(map(str, lengths))})")
    if not np.all(np.isfinite(t_arr)):
        raise LlmassayError("attention cost fit: a timing is not a finite number")
    order = np.argsort(n_arr, kind="stable")
    n_arr, t_arr = n_arr[order], t_arr[order]
    x = n_arr / _SCALE
    solve = np.linalg.pinv(np.column_stack([np.ones_like(x), x, x * x]))  # 3 × prefills
    point = solve @ t_arr
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, len(t_arr)))
    for n in lengths:  # stratified: each length's repeats resampled among themselves
        where = np.flatnonzero(n_arr == n)
        boot[:, where] = t_arr[where][rng.integers(0, len(where), size=(n_boot, len(where)))]
    draws = boot @ solve.T  # n_boot × 3
    units = np.array([1.0, 1 / _SCALE, 1 / _SCALE**2])  # back to seconds, s/token, s/token²
    point, draws = point * units, draws * units
    n_ref = int(n_ref or lengths[-1])
    share = _share(point[None, :], n_ref)[0]
    tail = (1 - LEVEL) / 2 * 100

    def ci(values: np.ndarray) -> tuple[float, float]:
        low, high = np.percentile(values, [tail, 100 - tail])
        return float(low), float(high)

    per_token = []
    for i, n in enumerate(lengths):
        values = t_arr[n_arr == n] / n
        m = bootstrap_mean(values, seed=seed + i)
        low, high = (m.value if b is None else b for b in (m.ci_low, m.ci_high))
        per_token.append(PerToken(n, m.value, (low, high), len(values)))
    method = (f"least squares of prefill seconds on (1, n, n²) over {len(t_arr)} prefills at {len(lengths)} lengths; "
              f"95 % percentile CIs from {n_boot} refits, each length's repeats resampled with replacement")
    return CostFit(float(point[0]), float(point[1]), float(point[2]), ci(draws[:, 0]), ci(draws[:, 1]), ci(draws[:, 2]),
                   n_ref, float(share), ci(_share(draws, n_ref)), tuple(per_token), method)


def _share(coefs: np.ndarray, n: int) -> np.ndarray:
    """c·n² / (a + b·n + c·n²) for each row (a, b, c)."""
    quad = coefs[:, 2] * n * n
    return np.asarray(quad / (coefs[:, 0] + coefs[:, 1] * n + quad))
