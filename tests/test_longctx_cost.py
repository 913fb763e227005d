"""Counting a grid's cost without a model: the counting backend sees the very prompts a run
sends (its totals equal a scripted run's own cost details), and the time arithmetic adds
attention's per-position cost exactly as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes import WindowBackend
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.longctx.cost import Cost
from llmassay.probes._grid_cost import grid_cost
from llmassay.longctx.prompt import prompt_text
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.needle import NeedleProbe
from llmassay.probes.position import CLOSED_BOOK, PositionProbe
from llmassay.tasks.loader import load_task

WORDS = WindowBackend({}, 1).tokenize  # one token per word, as the scripted reader counts


def test_the_count_equals_what_a_run_records(tmp_path: Path):
    task = load_task("needle_sample").limited(4)
    options = {"lengths": "256,512", "depths": "0,0.5,1"}
    cost = grid_cost(NeedleProbe(), task, WORDS, 2048, options, chat=False)
    cfg = ProbeConfig(seed=0, options=tuple(sorted(options.items())))
    ran = run_probe(NeedleProbe(), task, Engine(WindowBackend({}, 10_000)), cfg, SampleLog(tmp_path / "n.jsonl"))
    assert cost.prompt_tokens == ran.details["cost"]["prompt_tokens"]
    assert cost.prefill_tokens == ran.details["cost"]["prefill_tokens"]
    assert 0 < cost.prefill_tokens < cost.prompt_tokens  # the haystacks share their starts
    assert cost.answer_tokens == 64 * cost.requests


def test_the_position_grid_is_counted_too(tmp_path: Path):
    task = load_task("position_sample").limited(3)
    cost = grid_cost(PositionProbe(), task, WORDS, 2048, {"passages": 3}, chat=False)
    cfg = ProbeConfig(seed=0, options=(("passages", 3),))
    ran = run_probe(PositionProbe(), task, Engine(WindowBackend({}, 10_000)), cfg, SampleLog(tmp_path / "p.jsonl"))
    assert cost.requests == 3 * (3 + 1)  # three positions and the closed book per item
    closed_book = sum(len(WORDS(prompt_text(CLOSED_BOOK, "(no documents)", s.doc["question"], False)))
                      for s in task.samples)  # the run's prompt_tokens leave the closed book out
    assert cost.prompt_tokens == ran.details["prompt_tokens"] + closed_book


def test_time_adds_attention_per_position():
    cost = Cost(requests=1, prompt_tokens=4, prefill_tokens=4, answer_tokens=2, prefill_positions=0 + 1 + 2 + 3,
                answer_positions=2 * 4)
    assert cost.seconds(2.0, 1.0) == (2.0, 4.0)
    low, high = cost.seconds(2.0, 1.0, per_position=0.5)
    assert low == pytest.approx((4 + 0.5 * 6) / 2) and high == pytest.approx(low + (2 + 0.5 * 8) / 1)
