"""Latency percentiles with bootstrap CIs over requests (the unit of the CI is the request)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmassay.metrics import bootstrap_mean, bootstrap_statistic
from llmassay.types import Metric

PERCENTILES = (50, 95, 99)


def percentile_metric(values: Sequence[float], q: float, seed: int = 0) -> Metric:
    """The q-th percentile (linear interpolation, as numpy and vllm's benchmark) with a
    percentile-bootstrap CI; with few requests a p99 is near the maximum and its CI is wide."""
    column = np.asarray(values, dtype=float).reshape(-1, 1)
    m = bootstrap_statistic(column, lambda a: float(np.percentile(a[:, 0], q)), seed=seed)
    return Metric(m.value, m.ci_low, m.ci_high, m.n, m.stderr, f"p{q:g}, bootstrap over requests")


def percentiles(values: Sequence[float], seed: int = 0) -> dict[str, Metric]:
    return {f"p{q}": percentile_metric(values, q, seed) for q in PERCENTILES}


def pooled_percentiles(groups: Sequence[Sequence[float]], seed: int = 0) -> dict[str, Metric]:
    """Percentiles of values pooled over requests (e.g. every inter-token gap), as vllm's
    benchmark pools ITLs; the bootstrap resamples whole requests, because gaps within one
    request are correlated (resampling gaps would give too narrow a CI)."""
    kept = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not kept:
        return {}
    index = np.arange(len(kept), dtype=float).reshape(-1, 1)
    out = {}
    for q in PERCENTILES:
        def stat(rows: np.ndarray, q: float = q) -> float:
            return float(np.percentile(np.concatenate([kept[int(i)] for i in rows[:, 0]]), q))

        m = bootstrap_statistic(index, stat, seed=seed)
        out[f"p{q}"] = Metric(m.value, m.ci_low, m.ci_high, sum(len(g) for g in kept), m.stderr,
                              f"p{q:g} of gaps pooled over {len(kept)} requests, bootstrap over requests")
    return out


def scaled(m: Metric, factor: float, method: str) -> Metric:
    """A metric in other units (e.g. per answer → per 1k answers): the CI scales with it."""
    stderr = m.stderr * factor if m.stderr is not None else None
    return Metric(m.value * factor, m.ci_low * factor, m.ci_high * factor, m.n, stderr, method)


def mean_metric(values: Sequence[float], seed: int = 0) -> Metric:
    return bootstrap_mean(list(values), seed=seed)
