"""Planted truth for the judge's shares (issue #32, items 4 and 10): the share of verdicts
for the longer answer is not called a length bias (a judge that is always right gets +0.5
on it when the better answer is longer), shares over pairs keep Wilson width at 0 % and
100 %, and a judge is called informative only on enough calibration items, at no more than
the nominal one-sided error when it is at chance. Exact enumerations over the binomial
outcomes stand in for simulation: the figures depend only on a share's sum and n."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from fakes import judge_backend
from llmassay.engine.engine import Engine
from llmassay.evaluation import RunConfig, evaluate
from llmassay.judge import ModelJudge, OracleJudge, PairItem, analyse_pairs, judge_pairs
from llmassay.judge.calibration import calibration_metrics, calibration_pairs, items_of, question_of
from llmassay.judge.pairwise import winner
from llmassay.judge.stats import MIN_CALIBRATION_ITEMS
from llmassay.judge.templates import JudgeTemplates
from llmassay.tasks.loader import load_task

NOMINAL = 0.025  # one-sided: "accuracy's 95 % CI lies above chance"


def _row(verdicts: tuple[str, str], correct: str = "a", group: str = "plain", id_: str = "0") -> dict:
    """A judged pair whose two orders (a first, then b first) got these slot verdicts."""
    orders = [{"first": f, "verdict": v, "winner": winner(v, f), "output": ""} for f, v in zip("ab", verdicts)]
    return {"id": id_, "group": group, "correct": correct, "orders": orders, "len_a": 1, "len_b": 1,
            "answer_a": "x", "answer_b": "y", "outcome": "a"}


# -- item 4: the longer answer's share is confounded with quality ------------------------------
def _reference_pairs() -> list[PairItem]:
    """Reference 1234. Six pairs where the right answer is the longer one, then pairs of equal
    correctness with differing lengths: both wrong, and both right ("1234." matches too)."""
    better_longer = [PairItem(f"q{i}", f"q{i}", *(("1234", "12") if i % 2 else ("12", "1234")), reference="1234")
                     for i in range(6)]
    equal = [PairItem("w", "w", "7", "a much longer wrong answer", reference="1234"),
             PairItem("r", "r", "1234", "  1234.  ", reference="1234")]
    return better_longer + equal


def test_an_always_right_judge_has_no_length_bias_where_the_better_answer_is_longer():
    metrics, _ = analyse_pairs(judge_pairs(_reference_pairs(), OracleJudge(), JudgeTemplates()))
    assert "length_bias" not in metrics  # the old figure: +0.50 [0.50, 0.50] for this judge
    assert metrics["longer_chosen_rate"].value == pytest.approx((6 + 0.5 + 0.5) / 8)  # descriptive only
    fixed = metrics["length_bias_equal_correctness"]  # quality held fixed: ties both ways
    assert fixed.value == 0.0 and fixed.n == 2 and fixed.ci_low < 0 < fixed.ci_high


def test_a_length_biased_judge_shows_it_where_correctness_is_equal():
    judge = ModelJudge(Engine(judge_backend("longer")), "longer", chat=False)
    metrics, _ = analyse_pairs(judge_pairs(_reference_pairs(), judge, JudgeTemplates()))
    assert metrics["length_bias_equal_correctness"].value == 0.5 and metrics["longer_chosen_rate"].value == 1.0


def test_an_open_ended_reference_does_not_decide_equal_correctness():
    """Two free answers that both differ from an open prompt's reference are not "equally
    correct": exact match says nothing there, so the figure would be confounded again."""
    pairs = [PairItem("o", "o", "short", "a much longer free answer", reference="A reference text.",
                      exact_reference=False)]
    metrics, _ = analyse_pairs(judge_pairs(pairs, ModelJudge(Engine(judge_backend("longer")), "l", chat=False),
                                           JudgeTemplates()))
    assert metrics["longer_chosen_rate"].value == 1.0 and "length_bias_equal_correctness" not in metrics


def test_calibration_probe_reports_length_only_as_the_controlled_verbosity_effect(tmp_path):
    task = load_task("arith_sample", num_fewshot=0)
    key = {question_of(s): str(s.target) for s in task.samples}.get
    out = evaluate(RunConfig(model="test/judge", tasks=["arith_sample"], probes=["judge_calibration"], limit=12,
                             num_fewshot=0, output_path=str(tmp_path / "run"), cache_path=str(tmp_path / "c.sqlite")),
                   backend=judge_backend("correct", key))
    metrics = out.results["results"]["arith_sample"]["judge_calibration"]
    assert "length_bias" not in metrics  # was 0.5 − padded accuracy: −0.50 for this always-right judge
    effect = metrics["verbosity_effect"]  # plain − padded on the same items: nothing, with a real CI
    assert effect["value"] == 0.0 and effect["ci_low"] < 0 < effect["ci_high"]


# -- item 10: shares at 0 and 1, and when a judge may be called informative --------------------
def test_shares_keep_wilson_width_at_zero_and_one():
    one, _ = calibration_metrics([_row(("A", "B"))])  # right in both orders, one item
    assert one["accuracy"].value == 1.0 and one["accuracy"].ci_low == pytest.approx(0.2065, abs=1e-3)
    pairs, _ = analyse_pairs([_row(("A", "A"), id_=str(i)) for i in range(30)])  # slot A every time
    bias = pairs["first_slot_bias"]  # the README's "0.50 [0.50, 0.50] at 30 pairs"
    assert bias.value == 0.5 and bias.ci_high == 0.5 and bias.ci_low == pytest.approx(0.3865, abs=1e-3)


@pytest.mark.parametrize("n", [1, 2, 3, MIN_CALIBRATION_ITEMS - 1])
def test_a_judge_right_on_too_few_items_is_not_informative(n):
    task = load_task("arith_sample", num_fewshot=0).limited(n)
    rows = judge_pairs(calibration_pairs(items_of(task.samples, task.name)), OracleJudge(), JudgeTemplates())
    metrics, details = calibration_metrics(rows)
    assert metrics["accuracy"].value == 1.0 and details["informative"] is False
    assert details["uninformative_because"] == f"{n} calibration items, fewer than the {MIN_CALIBRATION_ITEMS} needed"


def _informative(right: int, half: int, n: int) -> bool:
    """Calibration of n items: `right` right in both orders, `half` in one, the rest in neither."""
    verdicts = [("A", "B")] * right + [("A", "A")] * half + [("B", "A")] * (n - right - half)
    return calibration_metrics([_row(v, id_=str(i)) for i, v in enumerate(verdicts)])[1]["informative"]


def test_a_judge_at_chance_is_called_informative_at_most_at_the_nominal_rate():
    """Exact, over every outcome: a chance judge that picks one answer and keeps it in both
    orders (shares 0/1: Wilson's binomial case) and one that flips a coin per order (shares
    0, ½, 1: Wilson is conservative). Below MIN_CALIBRATION_ITEMS never; from it on within
    2 points of the nominal 2.5 % (Wilson's one-sided error oscillates with n)."""
    for n in range(1, 41):
        consistent = sum(binom.pmf(k, n, 0.5) for k in range(n + 1) if _informative(k, 0, n))
        coin = sum(binom.pmf(s, 2 * n, 0.5) for s in range(2 * n + 1) if _informative(s // 2, s % 2, n))
        if n < MIN_CALIBRATION_ITEMS:
            assert consistent == coin == 0.0, n
        else:
            assert consistent <= NOMINAL + 0.02 and coin <= NOMINAL, n


def test_first_slot_rate_covers_the_planted_rate():
    """30 pairs; each names slot A in both orders with probability q (else B in both), so the
    per-pair share is 0/1. Over q in [0.5, 0.98] the Wilson interval's exact coverage of q
    averages within 2 points of 95 % and never drops below 92 % (binomial discreteness makes
    it oscillate); the old bootstrap was [1, 1] whenever all 30 named A, 40 % of runs at 0.97."""
    n = 30
    rates = [analyse_pairs([_row(("A", "A") if i < k else ("B", "B"), id_=str(i)) for i in range(n)])[0]
             ["first_slot_rate"] for k in range(n + 1)]
    grid = np.linspace(0.5, 0.98, 49)
    coverage = np.array([sum(binom.pmf(k, n, q) * (r.ci_low <= q <= r.ci_high) for k, r in enumerate(rates))
                         for q in grid])
    assert abs(coverage.mean() - 0.95) <= 0.02 and coverage.min() >= 0.92, (coverage.mean(), coverage.min())
