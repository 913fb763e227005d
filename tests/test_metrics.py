import math

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
