"""A bootstrap CI at a Bonferroni level (issue #32, item 10, minor): with 2,000 resamples an
interval at 1 − 0.05/45 rests on about one draw per tail, so its ends moved with the seed
(the counterfactual probe's 45 comparisons). The draws now grow with the level so that each
tail holds at least MIN_TAIL_DRAWS; planted gaps show the ends stable across seeds."""

from __future__ import annotations

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


def test_resampling_in_chunks_gives_the_interval_of_one_draw(monkeypatch):
    """Many values are resampled in chunks (memory); at 95 % one chunk is one draw as before."""
    values = np.random.default_rng(1).random(300)
    whole = bootstrap_mean(values, 0)
    monkeypatch.setattr("llmassay.metrics._CHUNK_CELLS", 300 * 7)  # 7 resamples a chunk
    chunked = bootstrap_mean(values, 0)
    assert chunked.value == whole.value and chunked.ci_low == pytest.approx(whole.ci_low, abs=0.01)
    assert chunked.ci_high == pytest.approx(whole.ci_high, abs=0.01)
