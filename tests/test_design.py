"""`llmassay plan` (issue #39): the planned n reaches the stated power in simulation, and the
command answers the worked example with its formula."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from llmassay import design
from llmassay.cli import main
from llmassay.types import LlmassayError

Z975 = 1.959964


def _paired_bernoulli(rng: np.random.Generator, reps: int, n: int, p_a: float, p_b: float, rho: float):
    """reps × n pairs of Bernoulli scores with marginals p_a, p_b and correlation rho."""
    p11 = p_a * p_b + rho * math.sqrt(p_a * (1 - p_a) * p_b * (1 - p_b))
    cells = np.array([p11, p_a - p11, p_b - p11, 1 - p_a - p_b + p11])
    assert (cells >= 0).all()
    kind = rng.choice(4, size=(reps, n), p=cells)
    return (kind <= 1).astype(float), ((kind == 0) | (kind == 2)).astype(float)


def _rejects(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The paired z-test on the per-item differences, two-sided 5 %."""
    d = b - a
    se = d.std(axis=1, ddof=1) / math.sqrt(d.shape[1])
    return np.abs(d.mean(axis=1)) > Z975 * np.where(se > 0, se, np.inf)


@pytest.mark.parametrize("p_a,effect,rho", [(0.6, 0.05, 0.5), (0.3, 0.08, 0.0), (0.75, 0.06, 0.3)])
def test_the_planned_n_reaches_the_stated_power(p_a: float, effect: float, rho: float) -> None:
    var = design.paired_binary_variance(p_a, p_a + effect, rho)
    plan = design.items_needed(var, effect, alpha=0.05, power=0.8)
    rng = np.random.default_rng(7)
    a, b = _paired_bernoulli(rng, 4000, plan.n, p_a, p_a + effect, rho)
    power = _rejects(a, b).mean()
    assert abs(power - 0.8) < 0.02, (plan.n, power)
    # and half the items fall well short of it: the n is not generous by accident
    assert _rejects(a[:, : plan.n // 2], b[:, : plan.n // 2]).mean() < 0.6


def test_the_minimum_detectable_effect_is_the_plans_inverse() -> None:
    var = design.paired_binary_variance(0.6, 0.63, 0.4)
    plan = design.items_needed(var, 0.03)
    mde = design.minimum_detectable_effect(var, plan.n)
    assert 0.0295 < mde <= 0.03  # n was rounded up, so the MDE at n is just below the effect
    assert design.minimum_detectable_effect(var, 4 * plan.n) == pytest.approx(mde / 2, rel=1e-9)


def test_resampling_and_clustering_move_the_variance_as_the_formulas_say() -> None:
    assert design.resampled_variance(0.1, 0.2, 4) == pytest.approx(0.15)
    assert design.design_effect(10, 0.2) == pytest.approx(2.8)
    assert design.difference_variance(0.25, 0.25, 1.0) == 0.0  # identical scores: no variance
    assert design.difference_variance(0.25, 0.16, None) == pytest.approx(0.41)
    with pytest.raises(LlmassayError, match="--power"):
        design.z_sum(0.05, 1.2)


def test_plan_answers_the_worked_example(capsys) -> None:
    assert main(["plan", "--baseline", "0.5", "--effect", "0.03", "--correlation", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "(2.802)² · 0.2496 / 0.0300²" in out  # the formula with its numbers
    assert "2,177 items (the same items for both models)" in out


def _run(tmp_path, name: str, scores: list[tuple[bool, list[float]]]) -> str:
    """A run folder as `evaluate` writes it: a results file and the accuracy rows of mmlu_sample."""
    root = tmp_path / name
    root.mkdir()
    ts = "2026-12-05T00-00-00.000000"
    results = {"results": {"mmlu_sample": {"accuracy": {}}}, "model": {"spec": f"fake/{name}"}, "config": {}}
    (root / f"results_{ts}.json").write_text(json.dumps(results))
    rows = [{"id": f"q{i}", "probe": "accuracy", "acc": acc, "loglikelihoods": lls, "target": 0}
            for i, (acc, lls) in enumerate(scores)]
    (root / f"samples_mmlu_sample_{ts}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(root)


def test_plan_reads_baseline_and_correlation_from_two_runs(tmp_path, capsys) -> None:
    # planted: A right on items 0-5, B right on 0-3 and 6: r and Var(d) computable by hand
    right_a = [i < 6 for i in range(10)]
    right_b = [i < 4 or i == 6 for i in range(10)]
    sure = lambda ok: [-0.1, -3.0] if ok else [-3.0, -0.1]  # noqa: E731
    a = _run(tmp_path, "a", [(ok, sure(ok)) for ok in right_a])
    b = _run(tmp_path, "b", [(ok, sure(ok)) for ok in right_b])
    out_json = tmp_path / "plan.json"
    assert main(["plan", "--runs", a, b, "--effect", "0.05", "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    record = json.loads(out_json.read_text())
    d = np.array(right_a, float) - np.array(right_b, float)
    assert record["n_read"] == 10 and record["baseline_a"] == 0.6 and record["baseline_b"] == 0.5
    assert record["correlation"] == pytest.approx(np.corrcoef(right_a, right_b)[0, 1])
    assert record["variance"] == pytest.approx(d.var(ddof=1))
    assert "P(correct) from the choices' log-likelihoods" in printed and "n_with_probabilities" in record


def test_plan_without_a_baseline_is_a_one_line_error(capsys) -> None:
    assert main(["plan", "--effect", "0.03"]) == 2
    assert "give --baseline" in capsys.readouterr().err


def test_an_interval_with_no_width_sizes_no_effect():
    """Every item scored alike (a CI of [0, 0]) shows no spread: that is no licence to claim any
    effect would have been seen, so no MDE is given and the verdict says the data cannot tell."""
    assert design.detectable_from_interval(0.0, 0.0) is None
    assert "could not say" in design.could_have_seen(0.0, 0.0)
    from llmassay.report.compare import paired_delta

    note = paired_delta("t", "p", "acc", [0] * 6, [0] * 6).power_note()
    assert note is not None and "cannot say how large" in note
