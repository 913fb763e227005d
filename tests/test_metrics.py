import math

import numpy as np
import pytest

from llmassay.metrics import (
    argmax,
    bootstrap_mean,
    byte_normalised_loglikelihoods,
    exact_match,
    normalise_answer,
    normalised_loglikelihoods,
    parse_choice,
    proportion,
)


def test_wilson_interval_known_values():
    m = proportion([1] * 50 + [0] * 50)
    assert m.value == 0.5 and m.n == 100
    assert m.ci_low == pytest.approx(0.4038, abs=1e-4)
    assert m.ci_high == pytest.approx(0.5962, abs=1e-4)


def test_wilson_interval_at_the_edges_stays_in_unit_range():
    zero = proportion([0] * 40)
    assert zero.value == 0.0 and zero.ci_low == 0.0 and 0.05 < zero.ci_high < 0.1
    one = proportion([1] * 40)
    assert one.ci_high == 1.0 and 0.9 < one.ci_low < 0.95


def test_empty_proportion_is_nan_with_n_zero():
    m = proportion([])
    assert m.n == 0 and math.isnan(m.value)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.8]
    a, b = bootstrap_mean(values, seed=3), bootstrap_mean(values, seed=3)
    assert a == b
    assert a.ci_low < a.value < a.ci_high
    assert a.value == pytest.approx(sum(values) / len(values))


def test_acc_norm_divides_by_characters_and_acc_bytes_by_utf8_bytes():
    # lm-eval: acc_norm = ll / len(choice), acc_bytes = ll / len(choice.encode("utf-8"))
    assert normalised_loglikelihoods([-4.0, -4.0], ["ab", "é"]) == [-2.0, -4.0]
    assert byte_normalised_loglikelihoods([-4.0, -4.0], ["ab", "é"]) == [-2.0, -2.0]
    assert normalised_loglikelihoods([-3.0], [""]) == [-3.0]  # an empty choice counts as length 1


def test_characters_and_bytes_pick_different_options_on_non_ascii_choices():
    # "日本" is 2 characters but 6 bytes; "Japan" is 5 of each.
    choices, lls = ["日本", "Japan"], [-3.0, -6.0]
    assert argmax(lls) == 0
    assert argmax(normalised_loglikelihoods(lls, choices)) == 1  # -1.5 vs -1.2
    assert argmax(byte_normalised_loglikelihoods(lls, choices)) == 0  # -0.5 vs -1.2


@pytest.mark.parametrize(
    "text,expected",
    [(" B", 1), ("(C)", 2), ("D.", 3), ("The answer is A", 0), ("", None), ("Both are wrong", None), ("E", None)],
)
def test_parse_letter_choice(text, expected):
    assert parse_choice(text, ["A", "B", "C", "D"]) == expected


def test_parse_text_choice_prefers_longest_match():
    assert parse_choice(" New York City, obviously", ["New York", "New York City", "Boston"]) == 1
    assert parse_choice("Chicago", ["New York", "Boston"]) is None


def test_exact_match_normalisation_keeps_signs():
    assert exact_match(" -1.", "-1")
    assert not exact_match("1", "-1")
    assert normalise_answer('  "Paris"  ') == "paris"


def test_wilson_bounds_are_exact_at_zero_and_one_hundred_percent():
    """0 of 200 is printed as [0, …], not [1.7e-18, …]: the formula's rounding dust is removed."""
    from llmassay.metrics import proportion

    none, every = proportion([0] * 200), proportion([1] * 200)
    assert none.ci_low == 0.0 and 0.018 < none.ci_high < 0.019
    assert every.ci_high == 1.0 and 0.981 < every.ci_low < 0.982


def test_sign_flip_p_is_exact_for_few_pairs_and_seeded_for_many():
    from llmassay.metrics import sign_flip_p

    assert sign_flip_p([0.3, 0.1, 0.2, 0.5, 0.4, 0.6]) == (pytest.approx(2 / 64), pytest.approx(2 / 64))
    assert sign_flip_p([1.0, -1.0, 0.0]) == (1.0, 0.5)  # zeros carry no sign; a balanced pair is p = 1
    assert sign_flip_p([2.0, 1.0, -1.0])[0] == pytest.approx(6 / 8)  # sums ±4, ±2, ±2, 0, 0: 6 of 8 reach 2
    p, floor = sign_flip_p([1.0] * 30, seed=3)
    assert p == floor == pytest.approx(1 / 20_001) and sign_flip_p([1.0] * 30, seed=3)[0] == p
    assert 0.2 < sign_flip_p([(-1.0) ** i for i in range(30)], seed=3)[0] <= 1.0


def test_holm_steps_down_and_stops_at_the_first_failure():
    from llmassay.metrics import holm_reject

    assert holm_reject([0.01, 0.04, 0.03], 0.05) == [True, False, False]  # 0.01 < 0.05/3; 0.03 ≥ 0.05/2
    assert holm_reject([0.01, 0.02, 0.04], 0.05) == [True, True, True]  # 0.02 < 0.025, 0.04 < 0.05
    assert holm_reject([0.3, 0.001], 0.05) == [False, True] and holm_reject([], 0.05) == []


# -- order-statistic quantile intervals (issue #32, item 1) --------------------------------
QS = (0.5, 0.95, 0.99)
SIGMA = 0.8  # lognormal latencies: log-latency ~ N(0, SIGMA²), true q-quantile exp(SIGMA · z_q)


def _true_quantile(q: float, sigma: float = SIGMA) -> float:
    from statistics import NormalDist

    return math.exp(sigma * NormalDist().inv_cdf(q))


def test_binomial_ranks_match_scipy_and_the_smallest_n_for_a_bound():
    binom = pytest.importorskip("scipy.stats").binom
    from llmassay.metrics import binomial_ranks, min_n_for_bound

    for n in (5, 6, 12, 30, 71, 72, 100, 367, 368, 400):
        for q in QS:
            low, high = binomial_ranks(n, q)
            # largest l with P(B ≤ l − 1) ≤ 2.5 %, smallest u with P(B ≥ u) ≤ 2.5 %
            ranks = np.arange(1, n + 1)
            lows = ranks[binom.cdf(ranks - 1, n, q) <= 0.025]
            highs = ranks[binom.sf(ranks - 1, n, q) <= 0.025]
            assert low == (lows.max() if lows.size else None), (n, q)
            assert high == (highs.min() if highs.size else None), (n, q)
    assert min_n_for_bound(0.99) == 368 and min_n_for_bound(0.95) == 72 and min_n_for_bound(0.5) == 6
    assert binomial_ranks(367, 0.99)[1] is None and binomial_ranks(368, 0.99)[1] == 368
    assert binomial_ranks(71, 0.95)[1] is None and binomial_ranks(72, 0.95)[1] == 72


@pytest.mark.parametrize("n", [12, 30, 100, 400])
def test_order_statistic_interval_covers_lognormal_quantiles_at_nominal(n):
    # 4000 simulated runs of n lognormal latencies (vectorised: the ranks depend on n only).
    # The bootstrap this replaces covered p99 in 13 % of runs at n = 12, 65 % at n = 100.
    from llmassay.metrics import binomial_ranks, min_n_for_bound, quantile_ci

    runs = np.sort(np.random.default_rng(n).lognormal(0.0, SIGMA, size=(4000, n)), axis=1)
    for q in QS:
        truth = _true_quantile(q)
        low, high = binomial_ranks(n, q)
        assert (high is None) == (n < min_n_for_bound(q))  # p99: none below 368, p95: below 72
        assert low is not None  # every n here bounds every one of these quantiles from below
        below = runs[:, low - 1] <= truth
        if high is None:
            assert below.mean() >= 0.975 - 0.02, (n, q)  # the one-sided bound holds at its own level
        else:
            assert (below & (truth <= runs[:, high - 1])).mean() >= 0.95 - 0.02, (n, q)
        one = quantile_ci(runs[0], q)
        assert one.ci_low == runs[0, low - 1] and one.n == n
        assert (one.ci_high is None) == (high is None)
        if high is None:
            assert "upper bound not estimable" in one.method


def test_a_quantile_bound_the_data_cannot_give_is_none_never_a_number():
    from llmassay.metrics import quantile_ci

    values = list(np.random.default_rng(0).lognormal(size=12))
    p99 = quantile_ci(values, 0.99)
    assert p99.ci_high is None and p99.ci_low is not None and p99.value <= max(values)
    assert p99.as_dict()["ci_high"] is None  # serialised as JSON null
    tiny = quantile_ci([1.0, 2.0], 0.5)
    assert tiny.ci_low is None and tiny.ci_high is None and tiny.value == 1.5
    with pytest.raises(ValueError, match="quantile q"):
        quantile_ci(values, 99)


def test_woodruff_interval_over_groups_covers_the_pooled_quantile():
    # Inter-token gaps: each request has its own speed (log-scale random effect sd 0.5) and
    # 16 gaps around it (sd 0.3), so gaps within a request are correlated. Pooled over
    # requests, log-gaps are N(0, 0.5² + 0.3²): the true pooled quantiles are known.
    from llmassay.metrics import clustered_quantile_ci, min_n_for_bound

    sigma = math.sqrt(0.5**2 + 0.3**2)
    rng = np.random.default_rng(7)
    for k, runs in ((30, 500), (100, 500), (400, 200)):
        covered = {q: [] for q in QS}
        for _ in range(runs):
            logs = rng.normal(0, 0.5, size=(k, 1)) + rng.normal(0, 0.3, size=(k, 16))
            for q in QS:
                m = clustered_quantile_ci(list(np.exp(logs)), q)
                # an upper bound needs as many requests as independent values would (p95: 72)
                assert (m.ci_high is None) == (k < min_n_for_bound(q)) and m.ci_low is not None
                if m.ci_high is not None:
                    covered[q].append(m.ci_low <= _true_quantile(q, sigma) <= m.ci_high)
        for q in QS:
            if covered[q]:
                assert np.mean(covered[q]) >= 0.95 - 0.02, (k, q, np.mean(covered[q]))
    # Four requests, each all fast or all slow: as good as four values, too few for a median.
    few = clustered_quantile_ci([[0.01] * 9, [0.05] * 9, [0.01] * 9, [0.05] * 9], 0.5)
    assert few.value == pytest.approx(0.03) and few.n == 36 and few.ci_low is None and few.ci_high is None
