"""Cluster-robust intervals (issue #39): items that share a source are not independent. With a
planted within-cluster correlation, a naive Wilson interval over items under-covers and the
cluster-robust one covers near nominal (simulated: fixed seed, vectorised)."""

from __future__ import annotations

import numpy as np

from llmassay.metrics import cluster_robust_proportion, proportion


def _draw(rng: np.random.Generator, clusters: int, size: int, mean: float, spread: float) -> np.ndarray:
    """clusters × size 0/1 scores: each cluster's own rate from Beta around `mean` (ICC > 0)."""
    a = mean * spread
    rates = rng.beta(a, spread - a, size=clusters)
    return (rng.random((clusters, size)) < rates[:, None]).astype(float)


def test_cluster_robust_covers_where_naive_wilson_does_not() -> None:
    rng = np.random.default_rng(11)
    runs, g, m, truth = 1500, 30, 8, 0.6
    keys = np.repeat(np.arange(g), m)
    robust = naive = 0
    deffs = []
    for _ in range(runs):
        x = _draw(rng, g, m, truth, spread=2.0).ravel()
        metric, clusters, deff = cluster_robust_proportion(x, keys)
        robust += metric.ci_low <= truth <= metric.ci_high
        w = proportion(x)
        naive += w.ci_low <= truth <= w.ci_high
        deffs.append(deff)
        assert clusters == g
    assert abs(robust / runs - 0.95) < 0.02, robust / runs
    assert naive / runs < 0.80  # the planted correlation: items are not independent
    # ICC = 1/(spread + 1) = 1/3 → design effect 1 + (m - 1)·ICC ≈ 3.3
    assert 2.5 < float(np.median(deffs)) < 4.0


def test_independent_items_keep_wilsons_interval() -> None:
    rng = np.random.default_rng(3)
    x = (rng.random(200) < 0.3).astype(float)
    metric, clusters, deff = cluster_robust_proportion(x, range(200))
    w = proportion(x)
    assert clusters == 200 and 0.8 < deff < 1.25
    assert abs(metric.ci_low - w.ci_low) < 0.01 and abs(metric.ci_high - w.ci_high) < 0.01
    assert metric.value == w.value


def test_the_accuracy_probe_clusters_by_a_document_field(tmp_path) -> None:
    """-P accuracy.cluster=subject: mmlu_sample's subjects as clusters; planted: a backend that
    knows every answer of half the subjects and none of the others (ICC = 1)."""
    import pytest
    from fakes import RuleBackend

    from llmassay.evaluation import RunConfig, evaluate
    from llmassay.tasks.loader import load_task
    from llmassay.types import LlmassayError

    task = load_task("mmlu_sample")
    subjects = sorted({s.doc["subject"] for s in task.samples})
    known = set(subjects[::2])
    letters = "ABCD"
    answer = {s.prompt: letters[s.target if s.doc["subject"] in known else (s.target + 1) % 4] for s in task.samples}

    def rule(prompt: str) -> str:
        return answer.get(prompt, "")

    cfg = RunConfig(model="test/x", tasks=["mmlu_sample"], probes=["accuracy"], limit=None,
                    output_path=str(tmp_path / "a"), use_cache=False, metrics=["acc"],
                    probe_options={"accuracy.cluster": "subject"})
    out = evaluate(cfg, backend=RuleBackend(rule))
    acc = out.results["results"]["mmlu_sample"]["accuracy"]["acc"]
    details = out.results["details"]["mmlu_sample"]["accuracy"]["clustered"]
    naive = proportion([o["acc"] for o in out.probe_results[0].samples])
    assert details["field"] == "subject" and details["clusters"] == len(subjects)
    assert details["metrics"]["acc"]["design_effect"] > 3  # whole subjects right or wrong
    assert acc["value"] == pytest.approx(naive.value)
    assert acc["ci_high"] - acc["ci_low"] > 1.5 * (naive.ci_high - naive.ci_low)
    cfg.probe_options = {"accuracy.cluster": "no_such_field"}
    cfg.output_path = str(tmp_path / "b")
    with pytest.raises(LlmassayError, match="has no field 'no_such_field'"):
        evaluate(cfg, backend=RuleBackend(rule))
