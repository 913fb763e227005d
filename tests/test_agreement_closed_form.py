"""Cohen's κ in closed form (issue #38: scikit-learn is no dependency): planted tables with
hand-computed values, the undefined case, and — only where scikit-learn happens to be
installed — the same numbers as its `cohen_kappa_score` on random labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmassay.review.agreement import cohen_kappa, weighted_kappa


def test_kappa_of_a_planted_three_label_table():
    # rows: rater x, columns: rater y, labels a b c; n = 10
    # [[3, 1, 0], [0, 2, 1], [1, 0, 2]]: po = 7/10; x marginals .4 .3 .3, y .4 .3 .3 → pe = .34
    pairs = [("a", "a")] * 3 + [("a", "b")] + [("b", "b")] * 2 + [("b", "c")] + [("c", "a")] + [("c", "c")] * 2
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    out = cohen_kappa(x, y)
    assert out["kappa"] == pytest.approx((0.7 - 0.34) / (1 - 0.34), abs=1e-12)
    assert out["observed_agreement"] == pytest.approx(0.7) and out["n"] == 10


def test_kappa_is_undefined_when_both_raters_use_one_label():
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"])["kappa"])
    assert math.isnan(weighted_kappa([3, 3], [3, 3])["kappa"])
    assert weighted_kappa([3, 3], [5, 5])["kappa"] == 0.0  # constant but different: no agreement beyond chance


def test_the_review_package_imports_no_scikit_learn():
    import subprocess
    import sys

    code = ("import sys; from llmassay.review.agreement import cohen_kappa, weighted_kappa; "
            "cohen_kappa(['a','b'], ['a','a']); weighted_kappa([1, 2], [2, 2]); print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_same_numbers_as_scikit_learn_where_it_is_installed():
    metrics = pytest.importorskip("sklearn.metrics", reason="optional cross-check: scikit-learn is not installed")
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        x = rng.choice(["a", "b", "c"], size=n).tolist()
        y = [v if rng.random() < 0.6 else str(rng.choice(["a", "b", "c"])) for v in x]
        labels = sorted(set(x) | set(y))
        assert cohen_kappa(x, y)["kappa"] == pytest.approx(metrics.cohen_kappa_score(x, y, labels=labels), abs=1e-12)
        sx = rng.integers(1, 11, size=n).tolist()
        sy = [min(10, max(1, v + int(rng.integers(-2, 3)))) for v in sx]
        expected = metrics.cohen_kappa_score(sx, sy, labels=list(range(1, 11)), weights="quadratic")
        assert weighted_kappa(sx, sy)["kappa"] == pytest.approx(expected, abs=1e-12)
