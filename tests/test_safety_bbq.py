"""The BBQ-style probe recovers planted stereotype reliance: a model that answers from the
stereotype only when the context is silent, one that always does, one that always says
"unknown", and one at chance (whose bias scores the output calls meaningless)."""

from __future__ import annotations

import dataclasses

import math

import pytest

from fakes import answer_key_backend, hashed_backend
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.bbq import BBQProbe
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError

TASK = load_task("bbq_sample")
BY_PROMPT = {s.prompt: s for s in TASK.samples}


def model(pick):
    """Answers each item with the option `pick(sample)` names (an index)."""
    return answer_key_backend(lambda prompt: BY_PROMPT[prompt].choices[pick(BY_PROMPT[prompt])])


def run(tmp_path, backend, **options):
    cfg = ProbeConfig(options=tuple(options.items()))
    return run_probe(BBQProbe(), TASK, Engine(backend), cfg, SampleLog(tmp_path / "log.jsonl"))


def test_bundled_set_is_balanced_in_bbq_form():
    docs = [s.doc for s in TASK.samples]
    assert len(docs) == 108 and len({d["category"] for d in docs}) == 7
    assert sum(d["context_condition"] == "ambig" for d in docs) == 36
    assert all(d["answer"] == d["unknown_answer"] for d in docs if d["context_condition"] == "ambig")
    dis = [d for d in docs if d["context_condition"] == "disambig"]
    assert sum(d["answer"] == d["biased_answer"] for d in dis) == len(dis) / 2  # half stereotype-consistent
    assert {s.target for s in TASK.samples} == {0, 1, 2}  # the right option is not always in one slot


def test_stereotype_only_when_the_context_is_silent(tmp_path):
    def pick(s):
        return s.doc["biased_answer"] if s.doc["context_condition"] == "ambig" else s.target

    result = run(tmp_path, model(pick))
    m = result.metrics
    assert m["acc[disambig]"].value == 1.0 and m["acc[ambig]"].value == 0.0
    assert m["s_dis"].value == 0.0 and m["s_amb"].value == 1.0
    assert not result.details["near_chance"] and result.summary.metric == "s_amb"
    assert result.summary.level == "warn"


def test_always_the_stereotype(tmp_path):
    m = run(tmp_path, model(lambda s: s.doc["biased_answer"])).metrics
    assert m["s_dis"].value == 1.0 and m["s_amb"].value == 1.0
    assert m["acc[disambig]"].value == 0.5 and m["unknown_rate"].value == 0.0


def test_a_perfect_model_has_no_ambiguous_bias(tmp_path):
    result = run(tmp_path, model(lambda s: s.target))
    m = result.metrics
    assert m["acc"].value == 1.0 and m["s_amb"].value == 0.0 and m["s_dis"].value == 0.0
    assert result.summary.level == "good"


def test_always_unknown_leaves_s_dis_undefined(tmp_path):
    m = run(tmp_path, model(lambda s: s.doc["unknown_answer"])).metrics
    assert math.isnan(m["s_dis"].value) and m["acc[ambig]"].value == 1.0 and m["acc[disambig]"].value == 0.0


def test_near_chance_the_output_says_the_bias_scores_are_meaningless(tmp_path):
    result = run(tmp_path, hashed_backend("bbq"), scoring="acc")
    assert result.details["near_chance"]
    assert "meaningless" in result.summary.verdict and result.summary.metric == "acc"
    assert "noise" in result.details["notes"][0]


def test_bad_items_are_one_line_errors(tmp_path):
    bad = TASK.limited(2)
    bad.samples[0] = dataclasses.replace(bad.samples[0], doc={**bad.samples[0].doc, "biased_answer": 7})
    with pytest.raises(LlmassayError, match="biased_answer must be an option index below 3"):
        run_probe(BBQProbe(), bad, Engine(hashed_backend()), ProbeConfig(), SampleLog(tmp_path / "l.jsonl"))
    assert "bbq_sample" in BBQProbe().supports(load_task("arith_sample"))
