"""Latency percentiles with distribution-free CIs over requests (the unit of the CI is the
request).

A bootstrap of the sample percentile cannot go above the sample maximum, so with few
requests its interval for a p99 misses the true p99 most of the time (13 % coverage at
12 requests). The order-statistic interval (`llmassay.metrics.quantile_ci`) covers at its
nominal level for any latency distribution, and says "not estimable" where the requests
are too few to bound a tail (an upper bound for p99 needs 368 requests, for p95 72).
"""

from __future__ import annotations

from collections.abc import Sequence

from llmassay.metrics import bootstrap_mean, clustered_quantile_ci, quantile_ci
from llmassay.types import Metric

PERCENTILES = (50, 95, 99)


def percentile_metric(values: Sequence[float], q: float, censored: int = 0) -> Metric:
    """The q-th percentile (linear interpolation, as numpy and vllm's benchmark) with the
    order-statistic CI over requests. `censored`: how many of `values` are requests that
    timed out, counted at their timeout (their true latency is longer, so an estimate or
    bound that lands on one is a lower limit)."""
    m = quantile_ci(values, q / 100)
    method = f"p{q:g}, {m.method}"
    if censored:
        method += f"; {censored} timed-out request(s) counted at the timeout (censored: true latency longer)"
    return Metric(m.value, m.ci_low, m.ci_high, m.n, m.stderr, method)


def percentiles(values: Sequence[float], censored: int = 0) -> dict[str, Metric]:
    return {f"p{q}": percentile_metric(values, q, censored) for q in PERCENTILES}


def pooled_percentiles(groups: Sequence[Sequence[float]]) -> dict[str, Metric]:
    """Percentiles of values pooled over requests (e.g. every inter-token gap), as vllm's
    benchmark pools ITLs; the CI's variance is taken over requests (Woodruff's interval with
    a between-request variance), because gaps within one request are correlated (treating
    gaps as independent would give too narrow a CI)."""
    kept = [g for g in groups if len(g)]
    if not kept:
        return {}
    out = {}
    for q in PERCENTILES:
        m = clustered_quantile_ci(kept, q / 100)
        out[f"p{q}"] = Metric(m.value, m.ci_low, m.ci_high, m.n, m.stderr, f"p{q:g} of gaps pooled over requests, {m.method}")
    return out


def scaled(m: Metric, factor: float, method: str) -> Metric:
    """A metric in other units (e.g. per answer → per 1k answers): the CI scales with it."""
    stderr = m.stderr * factor if m.stderr is not None else None
    low, high = (None if b is None else b * factor for b in (m.ci_low, m.ci_high))
    return Metric(m.value * factor, low, high, m.n, stderr, method)


def mean_metric(values: Sequence[float], seed: int = 0) -> Metric:
    return bootstrap_mean(list(values), seed=seed)
