"""A bootstrap CI at a Bonferroni level (issue #32, item 10, minor): with 2,000 resamples an
interval at 1 − 0.05/45 rests on about one draw per tail, so its ends moved with the seed
(the counterfactual probe's 45 comparisons). The draws now grow with the level so that each
tail holds at least MIN_TAIL_DRAWS; planted gaps show the ends stable across seeds."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from llmassay.metrics import MIN_TAIL_DRAWS, bootstrap_mean, resamples_for

BONFERRONI_45 = 1 - 0.05 / 45  # the counterfactual probe's level with its six attributes


def test_resamples_put_enough_draws_in_each_tail():
    assert resamples_for(0.95) == 2000  # unchanged at 95 %: stored outputs stay equal
    for level in (0.99, 0.999, BONFERRONI_45):
        assert resamples_for(level) * (1 - level) / 2 >= MIN_TAIL_DRAWS - 1e-6
    assert resamples_for(BONFERRONI_45) == 90_000
    with pytest.raises(ValueError, match="level 1.5"):
        resamples_for(1.5)


def test_bonferroni_interval_ends_are_stable_across_seeds():
    """20 planted per-template gaps; 10 seeds. Each end's range over the seeds stays within
    10 % of its distance from the mean (2,000 resamples: about 20–25 %)."""
    gaps = np.random.default_rng(7).normal(0.1, 0.2, 20)
    runs = [bootstrap_mean(gaps, seed, level=BONFERRONI_45) for seed in range(10)]
    low, high = np.array([m.ci_low for m in runs]), np.array([m.ci_high for m in runs])
    mean = float(gaps.mean())
    assert np.ptp(low) / (mean - low.mean()) < 0.10 and np.ptp(high) / (high.mean() - mean) < 0.10
    assert all(m.ci_low < mean < m.ci_high for m in runs)


def _one_matrix(values: np.ndarray, seed: int, draws: int = 2000) -> tuple[float, float]:
    """The method chunking replaced: one draws × n index matrix (1.6 GB at n = 100,000)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def test_resampling_in_chunks_gives_the_interval_of_one_draw(monkeypatch):
    """Many values are resampled in chunks (memory); the generator's stream is the same, so
    the interval is exactly the one the whole matrix gave, for any chunk size."""
    values = np.random.default_rng(1).random(300)
    assert (bootstrap_mean(values, 0).ci_low, bootstrap_mean(values, 0).ci_high) == _one_matrix(values, 0)
    monkeypatch.setattr("llmassay.metrics._CHUNK_CELLS", 300 * 7)  # 7 resamples a chunk, the last one short
    chunked = bootstrap_mean(values, 4)
    assert chunked.value == values.mean() and (chunked.ci_low, chunked.ci_high) == _one_matrix(values, 4)


def test_peak_memory_is_bounded_at_large_n():
    """n = 200,000: the whole matrix would hold 3.2 GB of indices; chunks keep the peak
    under 40 MB (about 16 MB of indices and gathered values, plus the input)."""
    values = np.random.default_rng(2).random(200_000)
    tracemalloc.start()
    try:
        m = bootstrap_mean(values, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB"
    assert m.ci_low < values.mean() < m.ci_high and m.n == 200_000
