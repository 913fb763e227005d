"""The bundled open_prompts task: 32 open-ended prompts with references, loadable by
`judge` and `review`; being open-ended, it gets no exact-match verdict and no oracle."""

from __future__ import annotations

import json

import pytest

from fakes import judge_backend
from llmassay.engine.engine import Engine
from llmassay.judge.loglik import LoglikJudge
from llmassay.judge.session import JudgeConfig, run_judgement
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError


def _run(root, task, answer):
    root.mkdir(parents=True)
    rows = [{"id": s.id, "prompt": s.prompt, "target": s.target, "generation": answer(s)} for s in task.samples]
    (root / "samples_open_prompts_2026-01-01T00-00-00.000000.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


@pytest.fixture
def runs(tmp_path):
    task = load_task("open_prompts")
    short = _run(tmp_path / "short", task, lambda s: "I am not sure.")
    long = _run(tmp_path / "long", task, lambda s: s.target)  # the reference itself: longer and better
    return task, short, long


def test_the_task_is_bundled_with_open_prompts():
    task = load_task("open_prompts")
    assert len(task.samples) >= 30 and len({s.prompt for s in task.samples}) == len(task.samples)
    assert task.samples[0].prompt == "Question: Explain in two sentences why the sky is blue.\nAnswer:"
    assert all(isinstance(s.target, str) and len(s.target) > 20 for s in task.samples)


def test_judge_and_review_load_it(runs, tmp_path):
    from llmassay.review.queue import load_queue

    task, short, long = runs
    judge = LoglikJudge(Engine(judge_backend("longer")), "longer")
    result = run_judgement(JudgeConfig(str(short), str(long), "scripted", str(tmp_path / "j"), calibrate=None,
                                       repeats=0), judge)
    assert result["details"]["pairs"] == len(task.samples) and result["metrics"]["win_b"]["value"] == 1.0
    assert result["metrics"]["longer_chosen_rate"]["value"] == 1.0  # the longer answer is also the better one
    assert "length_bias_equal_correctness" not in result["metrics"]  # open-ended: exact match says nothing
    pairs = load_queue(tmp_path / "j")
    assert len(pairs) == len(task.samples) and pairs[0].prompt.startswith("Explain")
    assert all(it.metric is None and it.reason == "" for it in pairs)  # open-ended: no exact-match verdict
    single = load_queue(long)
    assert single[0].kind == "single" and all(it.metric is None for it in single)


def test_the_oracle_refuses_open_ended_items(runs, tmp_path):
    _, short, long = runs
    with pytest.raises(LlmassayError, match="oracle: task open_prompts has no exact answers"):
        run_judgement(JudgeConfig(str(short), str(long), "oracle", str(tmp_path / "o"), calibrate=None))
