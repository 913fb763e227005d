"""Repeat-and-average (issue #39): `-P accuracy.samples=K` asks K answers per item at
temperature > 0, scores the item by their mean, and reports the within-item variance that
`llmassay plan` trades against K. Planted: a scripted backend whose item i is answered right
with a known probability p_i, decided by a hash of the request (seed included), so reruns agree."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from fakes import ScriptedBackend, _digest, prompt_of

from llmassay.cli import main
from llmassay.evaluation import RunConfig, evaluate
from llmassay.tasks.loader import load_task
from llmassay.types import GenerateRequest, LlmassayError

N, K = 40, 16
LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


def planted(shift: float = 0.0) -> tuple[ScriptedBackend, dict[str, float]]:
    """Item i (in task order) right with probability LEVELS[i % 5] (+ shift, clipped)."""
    task = load_task("arith_sample")
    target = {s.doc["input"]: str(s.doc["target"]) for s in task.samples}
    p = {s.doc["input"]: min(1.0, LEVELS[i % 5] + shift) for i, s in enumerate(task.samples)}

    def answer(req: GenerateRequest) -> str:
        question = re.findall(r"Question: (.*)\nAnswer:", prompt_of(req))[-1]
        u = _digest(prompt_of(req), str(req.seed), str(req.repeat)) % 10_000 / 10_000
        return target[question] if u < p[question] else "no idea"

    by_id = {s.id: p[s.doc["input"]] for s in task.samples}
    return ScriptedBackend(lambda c, x: 0.0, answer, identity=f"planted{shift}"), by_id


def run(tmp_path, name: str, backend: ScriptedBackend, k: int = K, temperature: float = 0.7) -> dict:
    cfg = RunConfig(model=f"test/{name}", tasks=["arith_sample"], probes=["accuracy"], limit=N, use_cache=False,
                    output_path=str(tmp_path / name), temperature=temperature,
                    probe_options={"accuracy.samples": k})
    return evaluate(cfg, backend=backend)


def test_k_answers_per_item_averaged_with_the_within_item_variance(tmp_path) -> None:
    backend, p = planted()
    out = run(tmp_path, "a", backend)
    assert len(backend.asked) == N * K  # K distinct requests per item: the engine deduplicated none
    rows = out.probe_results[0].samples
    means = np.array([r["exact_match"] for r in rows])
    truth = np.array([p[r["id"]] for r in rows])
    assert all(r["samples"] == K and len(r["sample_scores"]["exact_match"]) == K for r in rows)
    assert np.abs(means - truth).mean() < 0.08  # each item's share estimates its p_i
    assert means[truth == 0].max() == 0 and means[truth == 1].min() == 1
    metric = out.results["results"]["arith_sample"]["accuracy"]["exact_match"]
    assert metric["n"] == N and metric["value"] == pytest.approx(means.mean())
    assert metric["ci_low"] < truth.mean() < metric["ci_high"]
    var = out.results["details"]["arith_sample"]["accuracy"]["samples"]
    assert var["k"] == K and var["items"] == N
    em = var["metrics"]["exact_match"]
    # planted: E[p(1 − p)] over the levels = 0.125, Var(p_i) = 0.125 (population)
    assert em["within_var"] == pytest.approx(np.mean(truth * (1 - truth)), abs=0.025)
    assert em["between_var"] == pytest.approx(truth.var(ddof=1), abs=0.035)


def test_samples_need_sampling(tmp_path) -> None:
    backend, _ = planted()
    with pytest.raises(LlmassayError, match="needs --temperature > 0"):
        run(tmp_path, "greedy", backend, temperature=0.0)


def test_one_sample_keeps_the_rows_as_they_were(tmp_path) -> None:
    backend, _ = planted()
    out = run(tmp_path, "one", backend, k=1)
    rows = out.probe_results[0].samples
    assert all(isinstance(r["exact_match"], bool) and "samples" not in r for r in rows)
    assert "samples" not in out.results["details"]["arith_sample"]["accuracy"]
    assert "samples" not in out.results["probes"]["accuracy"]["options"]  # the resume key is unchanged


def test_plan_reads_the_within_item_variance_from_two_runs(tmp_path, capsys) -> None:
    a, _ = planted()
    b, _ = planted(0.1)
    run(tmp_path, "a", a)
    run(tmp_path, "b", b)
    out_json = tmp_path / "plan.json"
    assert main(["plan", "--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--effect", "0.05",
                 "--metric", "exact_match", "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    record = json.loads(out_json.read_text())
    assert record["samples_read"] == K and 0.15 < record["within_var_read"] < 0.35
    assert f"averaged K = {K} answers per item" in printed and "with K = 1 answers per item" in printed
    # more answers per item never need more items; one answer per item needs more than K
    counts = [int(m.replace(",", "")) for m in re.findall(r"with K = \d+ answers per item: ([\d,]+)", printed)]
    assert counts == sorted(counts, reverse=True) and counts[0] > record["n"]
