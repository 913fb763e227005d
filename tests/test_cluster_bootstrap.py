"""Paired comparisons when items share sources (issue #39): `compare` resamples whole clusters
when both runs' rows name each item's source. With a planted within-cluster correlation of the
per-item differences, the cluster bootstrap covers near nominal where the item bootstrap does
not (simulated: fixed seeds, vectorised, seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from llmassay.metrics import bootstrap_mean, cluster_bootstrap_mean, cluster_robust_variance
from llmassay.report.compare import paired_delta


def _pair(rng: np.random.Generator, g: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Two models' 0/1 scores on g sources × m items: each source has its own rate per model
    (Beta around 0.6, ICC 1/3), the two drawn independently, so the true mean difference is 0 and
    the items of one source share their difference's sign."""
    ra, rb = rng.beta(1.2, 0.8, size=(2, g))
    a = (rng.random((g, m)) < ra[:, None]).astype(float).ravel()
    b = (rng.random((g, m)) < rb[:, None]).astype(float).ravel()
    return a, b


def test_cluster_bootstrap_covers_where_the_item_bootstrap_does_not() -> None:
    rng = np.random.default_rng(7)
    runs, g, m = 400, 40, 6
    keys = np.repeat(np.arange(g), m).tolist()
    clustered = naive = 0
    for run in range(runs):
        a, b = _pair(rng, g, m)
        d = paired_delta("t", "p", "acc", a.tolist(), b.tolist(), seed=run, clusters=keys)
        clustered += d.ci_low <= 0.0 <= d.ci_high
        item = bootstrap_mean(b - a, seed=run, n_boot=1000)  # the item bootstrap paired_delta uses without keys
        naive += item.ci_low <= 0.0 <= item.ci_high
        assert d.clusters == g
    assert 0.92 <= clustered / runs <= 0.975, clustered / runs
    assert naive / runs < 0.80, naive / runs


def test_with_one_item_per_cluster_the_cluster_bootstrap_is_the_item_bootstrap() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(0.1, 1.0, 300)
    c, i = cluster_bootstrap_mean(d, range(300), seed=0), bootstrap_mean(d, seed=0)
    assert c.value == pytest.approx(i.value)
    assert c.ci_low == pytest.approx(i.ci_low, abs=0.03) and c.ci_high == pytest.approx(i.ci_high, abs=0.03)
    var, g = cluster_robust_variance(d, range(300))
    assert g == 300 and var == pytest.approx(d.var(ddof=1) / 300, rel=0.01)


def test_the_clustered_mde_is_wider_by_the_design_effect() -> None:
    # planted: 10 sources × 10 items, every item of a source has the same difference (ICC 1)
    shifts = np.tile([1, 0, 0, 0, 0, -1, 0, 0, 0, 0], 1)
    b = np.repeat(shifts, 10).clip(0, 1).astype(float)
    a = np.repeat(-shifts, 10).clip(0, 1).astype(float)
    keys = np.repeat(np.arange(10), 10).tolist()
    plain = paired_delta("t", "p", "acc", a.tolist(), b.tolist())
    cluster = paired_delta("t", "p", "acc", a.tolist(), b.tolist(), clusters=keys)
    assert cluster.clusters == 10 and plain.clusters is None
    assert cluster.mde / plain.mde == pytest.approx(np.sqrt(10 * 99 / 100 * 10 / 9), rel=0.01)
    assert "in 10 clusters" in cluster.power_note() and "cluster bootstrap" in cluster.method


def test_compare_resamples_clusters_when_both_runs_name_them(tmp_path) -> None:
    """Two runs with -P accuracy.cluster=subject: compare says so and its delta has clusters."""
    from fakes import RuleBackend

    from llmassay.evaluation import RunConfig, evaluate
    from llmassay.report.compare import compare_runs
    from llmassay.tasks.loader import load_task

    task = load_task("mmlu_sample")
    subjects = sorted({s.doc["subject"] for s in task.samples})

    def backend(known: set[str]) -> RuleBackend:
        answer = {s.prompt: "ABCD"[s.target if s.doc["subject"] in known else (s.target + 1) % 4] for s in task.samples}
        return RuleBackend(lambda prompt: answer.get(prompt, ""))

    def run(name: str, known: set[str], cluster: str | None) -> str:
        cfg = RunConfig(model=f"test/{name}", tasks=["mmlu_sample"], probes=["accuracy"], limit=None,
                        output_path=str(tmp_path / name), use_cache=False, metrics=["acc"],
                        probe_options={"accuracy.cluster": cluster} if cluster else {})
        evaluate(cfg, backend=backend(known))
        return str(tmp_path / name)

    a = run("a", set(subjects[::2]), "subject")
    b = run("b", set(subjects[::3]), "subject")
    cmp = compare_runs(a, b)
    (acc,) = [d for d in cmp.paired if d.metric == "acc"]
    assert acc.clusters == len(subjects)
    assert any("cluster bootstrap" in n and f"{len(subjects)} clusters" in n for n in cmp.notes)
    plain = compare_runs(run("a0", set(subjects[::2]), None), run("b0", set(subjects[::3]), None))
    (acc0,) = [d for d in plain.paired if d.metric == "acc"]
    assert acc0.clusters is None and acc0.delta == pytest.approx(acc.delta) and not plain.notes
    assert (acc.ci_high - acc.ci_low) > 1.5 * (acc0.ci_high - acc0.ci_low)  # whole subjects move together


GEN_YAML = """task: passages
dataset_path: json
dataset_kwargs:
  data_files: {test: passages.jsonl}
test_split: test
output_type: generate_until
doc_to_text: "{{passage}}\\nQuestion: {{question}}\\nAnswer:"
doc_to_target: "{{answer}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
metric_list:
  - metric: exact_match
metadata:
  version: 1.0
  cluster: passage_id
"""


def test_a_task_file_names_its_cluster_field(tmp_path) -> None:
    """`metadata: {cluster: passage_id}` in the task file: clustered by default (3 questions per
    passage; planted: the model knows every answer about even passages, none about odd ones);
    `-P accuracy.cluster=none` turns it off. Generation tasks keep their chat details too."""
    import json

    from fakes import RuleBackend

    from llmassay.evaluation import RunConfig, evaluate

    docs = [{"passage_id": f"p{g}", "passage": f"Passage {g}.", "question": f"q{g}-{j}?", "answer": f"a{g}{j}"}
            for g in range(12) for j in range(3)]
    (tmp_path / "passages.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "passages.yaml").write_text(GEN_YAML)
    known = {f"Passage {g}.\nQuestion: q{g}-{j}?\nAnswer:": f"a{g}{j}" for g in range(0, 12, 2) for j in range(3)}

    def run(name: str, **options: str):
        cfg = RunConfig(model="test/x", tasks=[str(tmp_path / "passages.yaml")], probes=["accuracy"], limit=None,
                        output_path=str(tmp_path / name), use_cache=False,
                        probe_options={f"accuracy.{k}": v for k, v in options.items()})
        return evaluate(cfg, backend=RuleBackend(lambda prompt: known.get(prompt, "")))

    out = run("declared")
    details = out.results["details"]["passages"]["accuracy"]
    assert details["clustered"]["field"] == "passage_id" and details["clustered"]["clusters"] == 12
    assert details["clustered"]["metrics"]["exact_match"]["design_effect"] > 2.5  # ICC 1, 3 per passage
    assert "chat_template" in details  # a generation task's details keep the clustering too
    assert [r["cluster"] for r in out.probe_results[0].samples][:4] == ["p0", "p0", "p0", "p1"]
    off = run("off", cluster="none")
    assert "clustered" not in off.results["details"]["passages"]["accuracy"]
    assert "cluster" not in off.probe_results[0].samples[0]
    em, em_off = (o.results["results"]["passages"]["accuracy"]["exact_match"] for o in (out, off))
    assert em["value"] == em_off["value"] == 0.5
    assert em["ci_high"] - em["ci_low"] > 1.4 * (em_off["ci_high"] - em_off["ci_low"])


def test_cell_clustering_reads_the_design_effect_of_pooling_an_items_cells() -> None:
    from llmassay.metrics import cell_clustering

    rng = np.random.default_rng(5)
    whole = [[bool(x)] * 10 for x in rng.random(60) < 0.5]  # every item all right or all wrong: ICC 1
    c = cell_clustering(whole)
    assert c == {"unit": "item", "clusters": 60, "cells": 600, "design_effect": pytest.approx(10, rel=0.05)}
    loose = (rng.random((60, 10)) < 0.5).tolist()  # cells independent of their item
    assert 0.7 < cell_clustering(loose)["design_effect"] < 1.4


@pytest.mark.parametrize("probe,task,options", [
    ("position", "position_sample", {"passages": 3}),
    ("needle", "needle_sample", {"lengths": "1024", "depths": "0,1"}),
])
def test_probes_with_cells_per_item_say_how_they_cluster(tmp_path, probe, task, options) -> None:
    from fakes import hashed_backend

    from llmassay.evaluation import RunConfig, evaluate

    out = evaluate(RunConfig(model="test/hashed", tasks=[task], probes=[probe], limit=4, output_path=str(tmp_path),
                             use_cache=False, probe_options=options), backend=hashed_backend())
    clustering = out.results["details"][task][probe]["clustering"]
    assert clustering["unit"] == "item" and clustering["clusters"] == 4
    assert clustering["cells"] == 4 * (3 if probe == "position" else 2) and clustering["design_effect"] > 0
