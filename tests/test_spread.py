"""The shared best − worst spread helper, proven on correctness matrices whose truth is
planted: interchangeable variants (true spread 0) and one variant made worse."""

from __future__ import annotations

import numpy as np
import pytest

from llmassay.metrics import bootstrap_statistic, spread_with_null

N_ITEMS, N_VARIANTS = 100, 14
NAMES = [f"v{j}" for j in range(N_VARIANTS)]


def interchangeable(seed: int, bad: int | None = None, drop: float = 0.0) -> np.ndarray:
    """Items of varied difficulty; every variant answers item i right with the same
    probability — except `bad`, which is `drop` less likely to."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.2, 0.9, size=(N_ITEMS, 1)) * np.ones((1, N_VARIANTS))
    if bad is not None:
        p[:, bad] -= drop
    return (rng.random((N_ITEMS, N_VARIANTS)) < p).astype(float)


def test_interchangeable_variants_ci_covers_zero_where_the_old_one_did_not():
    seeds = range(60)
    results = [spread_with_null(interchangeable(s), NAMES, seed=s, n_perm=500) for s in seeds]
    covers = np.mean([r.metric.ci_low == 0.0 for r in results])
    assert covers >= 0.90
    assert np.mean([r.p_value < 0.05 for r in results]) <= 0.10
    # The raw spread is the range of noise, and the null says so: they match on average.
    raw = np.mean([r.metric.value for r in results])
    assert raw > 0.08
    assert np.mean([r.null.value for r in results]) == pytest.approx(raw, rel=0.15)
    assert abs(np.mean([r.excess for r in results])) < 0.02
    # The old statistic (best and worst picked once, only that pair bootstrapped) calls
    # most of these runs brittle.
    old_excludes = []
    for s in seeds:
        m = interchangeable(s)
        b, w = int(m.mean(0).argmax()), int(m.mean(0).argmin())
        old_excludes.append(bootstrap_statistic(m, lambda x: float(x[:, b].mean() - x[:, w].mean()), s).ci_low > 0)
    assert np.mean(old_excludes) > 0.5


def test_one_planted_bad_variant_is_detected_and_named():
    for seed in range(10):
        result = spread_with_null(interchangeable(seed, bad=5, drop=0.35), NAMES, seed=seed, n_perm=500)
        assert result.worst == "v5"
        assert result.p_value < 0.05 and result.metric.ci_low > 0
        assert result.metric.ci_low <= 0.35 <= result.metric.ci_high + 0.1


def test_value_is_the_raw_range_and_ci_brackets_it():
    m = interchangeable(3)
    result = spread_with_null(m, NAMES, seed=3)
    means = m.mean(0)
    assert result.metric.value == pytest.approx(means.max() - means.min())
    assert result.best == NAMES[int(means.argmax())] and result.worst == NAMES[int(means.argmin())]
    assert result.metric.ci_low <= result.metric.value <= result.metric.ci_high
    assert result.metric.n == N_ITEMS
    assert result.null.ci_low <= result.null.value <= result.null.ci_high
    assert spread_with_null(m, NAMES, seed=3) == result  # seeded


def test_identical_variants_have_no_spread_and_p_one():
    column = (np.arange(40) % 3 == 0).astype(float)[:, None]
    result = spread_with_null(np.repeat(column, 5, axis=1), NAMES[:5], seed=0)
    assert (result.metric.value, result.metric.ci_low, result.metric.ci_high) == (0.0, 0.0, 0.0)
    assert result.null.value == 0.0 and result.p_value == 1.0


def test_degenerate_shapes():
    one = spread_with_null(np.ones((10, 1)), ["only"], seed=0)
    assert one.metric.value == 0.0 and one.p_value == 1.0 and one.best == one.worst == "only"
    empty = spread_with_null(np.zeros((0, 3)), NAMES[:3], seed=0)
    assert empty.metric.n == 0 and np.isnan(empty.metric.value)


def test_large_matrices_are_permuted_in_chunks():
    rng = np.random.default_rng(0)
    m = (rng.random((3000, 30)) < 0.5).astype(float)
    result = spread_with_null(m, [str(j) for j in range(30)], seed=0, n_boot=200, n_perm=200)
    assert result.p_value > 0.05 and result.metric.ci_low == 0.0
