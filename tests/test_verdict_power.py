"""Summary-card verdicts that say nothing was detected also say what the run could have seen
(issue #39): a "stable" or "no gap" line never reads as "no effect" where the run had no power."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmassay.design import detectable_from_interval, z_sum
from llmassay.probes.base import Analysis
from llmassay.probes.brittleness import BrittlenessProbe
from llmassay.probes.counterfactual import CounterfactualProbe
from llmassay.probes.strategies import StrategiesProbe
from llmassay.types import Metric

TASK = SimpleNamespace(name="t")


def test_a_stable_verdict_says_what_flip_rate_the_run_could_have_seen() -> None:
    flips = Metric(0.02, 0.005, 0.07, 100, None, "wilson")
    line = BrittlenessProbe().summary(TASK, Analysis({"flip_rate_mean": flips}), None)
    mde = detectable_from_interval(0.005, 0.07)
    assert line.verdict.startswith("stable") and f"could have seen a flip rate of {mde:.2g}" in line.verdict


def test_no_attribute_gap_says_what_gap_the_templates_could_have_seen() -> None:
    # 4 comparisons at the Bonferroni level 1 − 0.05/4: the MDE reads the interval at that level
    gaps = {f"gap_sentiment[gender:{g}]": Metric(0.01 * i, -0.2, 0.2 + 0.02 * i, 30, None, "bootstrap")
            for i, g in enumerate("abcd")}
    analysis = Analysis(gaps, {"flagged": [], "min_attainable_p": 1e-5, "first_holm_level": 0.0125})
    line = CounterfactualProbe().summary(TASK, analysis, None)
    key = "gap_sentiment[gender:d]"  # the largest gap
    se = (gaps[key].ci_high - gaps[key].ci_low) / (2 * 2.4977054)  # z at 1 − 0.0125/2
    assert detectable_from_interval(gaps[key].ci_low, gaps[key].ci_high, 0.0125) == pytest.approx(
        z_sum(0.0125, 0.8) * se, rel=1e-4)
    assert line.verdict.startswith("no attribute gap beyond chance")
    assert f"could have seen a {key} gap of {z_sum(0.0125, 0.8) * se:.2g}" in line.verdict


def test_no_strategy_gain_says_what_gain_the_items_could_have_seen() -> None:
    table = [{"strategy": "zero_shot", "cost_ratio": 1.0},
             {"strategy": "cot", "holm_p": 0.4, "delta": 0.02, "cost_ratio": 3.0, "delta_ci": [-0.1, 0.14]},
             {"strategy": "sc", "holm_p": 0.9, "delta": 0.0, "cost_ratio": 5.0, "delta_ci": [-0.08, 0.08]}]
    metrics = {"acc[zero_shot]": Metric(0.3, 0.2, 0.4, 50, None, "wilson")}
    line = StrategiesProbe().summary(TASK, Analysis(metrics, {"strategies": table}), None)
    lo, hi = detectable_from_interval(-0.08, 0.08), detectable_from_interval(-0.1, 0.14)
    assert line.verdict.startswith("no strategy beats zero-shot") and f"a gain of {lo:.2g}–{hi:.2g}" in line.verdict
