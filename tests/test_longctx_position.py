"""The position probe recovers a planted position effect: a reader of the last N words
shows recency (a positive slope, no U), a reader of the first and last N words shows a U,
and a reader of everything shows neither; the closed-book baseline of invented facts is 0.
Chosen positions keep their real places: pure recency tested at 1, 2 and 10 of 10 is no U."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fakes import WindowBackend, prompt_of
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.longctx.shape import fit_shape, position_x, quadratic
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.position import PositionProbe
from llmassay.tasks.loader import load_task
from llmassay.types import Generation, LlmassayError

TASK = load_task("position_sample")
FACTS = {s.doc["passage"]: (s.doc["question"], s.doc["answer"]) for s in TASK.samples}


def run(tmp_path: Path, backend, limit: int = 20, **options):
    cfg = ProbeConfig(seed=0, options=tuple(sorted(options.items())))
    log = SampleLog(tmp_path / f"log-{len(list(tmp_path.iterdir()))}.jsonl")
    return run_probe(PositionProbe(), TASK.limited(limit), Engine(backend), cfg, log)


def test_bundled_documents_answer_only_their_own_question():
    for s in TASK.samples:
        assert s.doc["answer"] in s.doc["passage"]
        assert s.doc["question"].split()[-1].rstrip("?") in s.doc["passage"]  # the village it asks about
    assert len({s.doc["question"] for s in TASK.samples}) == 40


def test_a_reader_of_the_last_words_shows_recency_and_no_u(tmp_path):
    words_per_doc = 50  # a document is 45-50 words: the last 3 of 10 are in view
    m = run(tmp_path, WindowBackend(FACTS, 3 * words_per_doc), passages=10).metrics
    curve = [m[f"accuracy[{p}]"].value for p in range(1, 11)]
    assert curve[:6] == [0.0] * 6 and curve[-2:] == [1.0, 1.0]
    assert m["recency_slope"].ci_low > 0
    assert m["middle_drop"].value < 0.5
    assert m["closed_book"].value == 0.0


def test_a_reader_of_both_ends_shows_a_u(tmp_path):
    m = run(tmp_path, WindowBackend(FACTS, 120, side="both"), passages=10).metrics
    curve = [m[f"accuracy[{p}]"].value for p in range(1, 11)]
    assert curve[0] == 1.0 and curve[-1] == 1.0 and curve[4] == 0.0 and curve[5] == 0.0
    assert m["u_term"].ci_low > 0 and m["middle_drop"].ci_low > 0.5


def test_a_reader_of_everything_shows_no_position_effect(tmp_path):
    result = run(tmp_path, WindowBackend(FACTS, 100_000), passages=6)
    m = result.metrics
    assert all(m[f"accuracy[{p}]"].value == 1.0 for p in range(1, 7))
    assert m["u_term"].value == pytest.approx(0, abs=1e-9) and m["recency_slope"].value == pytest.approx(0, abs=1e-9)
    assert result.summary.level == "good"


def test_quadratic_fit_recovers_known_terms():
    x = np.linspace(-1, 1, 7)
    a, b, c = quadratic(0.5 + 0.2 * x + 0.3 * x**2)
    assert (a, b, c) == pytest.approx((0.5, 0.2, 0.3))
    flat = fit_shape(np.ones((10, 5)))
    assert flat.u_term.value == pytest.approx(0) and flat.u_term.ci_low == pytest.approx(0, abs=1e-9)


def test_bad_positions_and_too_few_items_are_one_line_errors(tmp_path):
    with pytest.raises(LlmassayError, match=r"^-P position\.positions: positions run from 1 to passages=5"):
        run(tmp_path, WindowBackend(FACTS, 10), limit=2, passages=5, positions="2,6")
    with pytest.raises(LlmassayError, match=r"^-P position\.positions: 0,x: positions are whole numbers from 1"):
        PositionProbe.options({"positions": "0,x"})
    with pytest.raises(LlmassayError, match=r"^-P position\.passages=50: task position_sample has only 2 items"):
        cfg = ProbeConfig(options=(("passages", 50),))
        run_probe(PositionProbe(), TASK.limited(2), Engine(WindowBackend(FACTS, 10)), cfg, SampleLog(tmp_path / "x.jsonl"))


def test_a_step_after_the_first_position_is_convex_but_not_a_u():
    step = np.zeros((20, 8))
    step[:, 0] = 1.0  # found only when first: the quadratic fit is convex (c > 0) all the same
    shape = fit_shape(step)
    assert shape.u_term.ci_low > 0
    assert shape.first_gain.value == pytest.approx(1.0) and shape.last_gain.value == pytest.approx(0.0)
    assert shape.recency_slope.ci_high < 0  # what the summary reports: primacy


class LinearRecency:
    """Finds item i (0-based, task order) when its gold document is at position p of 10 iff
    i < 2 + 3(p − 1): accuracy over 36 items exactly linear in p, from 2/36 to 29/36 — pure
    recency, no U, whichever positions are tested."""

    name = "test/linear-recency"

    def __init__(self, samples) -> None:
        self.rank = {s.doc["question"]: (i, s.doc["passage"], s.doc["answer"]) for i, s in enumerate(samples)}

    def generate(self, reqs):
        out = []
        for r in reqs:
            prompt = prompt_of(r)
            question = re.search(r"Question: (.*?\?)", prompt).group(1)
            i, passage, answer = self.rank[question]
            docs = re.findall(r"Document \[(\d+)\]: (.*?)(?=\n\nDocument \[|\n\nQuestion:)", prompt, re.S)
            gold = next((int(k) for k, text in docs if text == passage), None)
            text = f"It is {answer}." if gold is not None and i < 2 + 3 * (gold - 1) else "I do not know."
            out.append(Generation(text, len(prompt.split()), 3, "stop", 0.001))
        return out

    def tokenize(self, text: str) -> list[int]:
        return list(range(len(text.split())))

    def fingerprint(self) -> dict[str, str]:
        return {"backend": self.name}


def test_pure_recency_at_uneven_positions_has_no_u_and_no_middle_drop(tmp_path):
    every = run(tmp_path, LinearRecency(TASK.samples), limit=36, passages=10).metrics
    chosen = run(tmp_path, LinearRecency(TASK.samples), limit=36, passages=10, positions="1,2,10").metrics
    assert [chosen[f"accuracy[{p}]"].value for p in (1, 2, 10)] == pytest.approx([2 / 36, 5 / 36, 29 / 36])
    slope = 27 / 36 / 2  # accuracy rises 27/36 from x = -1 to x = +1
    for m in (every, chosen):
        assert m["u_term"].value == pytest.approx(0, abs=1e-9) and m["u_term"].ci_low <= 0 <= m["u_term"].ci_high
        assert m["recency_slope"].value == pytest.approx(slope) and m["recency_slope"].ci_low > 0
        # position 2 lies on the line between the ends: nothing drops in the middle
        assert m["middle_drop"].value == pytest.approx(0, abs=1e-9)
    assert chosen["last_gain"].value == pytest.approx(24 / 36) and chosen["first_gain"].value == pytest.approx(-3 / 36)


def test_a_planted_u_at_uneven_positions_is_measured_at_the_true_positions():
    x = position_x([1, 2, 10], 10)
    assert x == pytest.approx([-1, -7 / 9, 1])
    rates = 0.2 + 0.6 * x**2  # a U over the real positions: ends 0.8, position 2 at 0.56
    matrix = (np.arange(100)[:, None] < np.round(rates * 100)).astype(float)  # 100 items, exact column means
    shape = fit_shape(matrix, x)
    assert shape.u_term.value == pytest.approx(0.6, abs=0.01) and shape.recency_slope.value == pytest.approx(0, abs=0.01)
    assert shape.middle_drop.value == pytest.approx(0.6 * (1 - 49 / 81), abs=0.01)  # the drop at position 2, not at the centre
    without_first = fit_shape(matrix[:, 1:], x[1:])
    assert without_first.first_gain is None and without_first.middle_drop is None and without_first.last_gain is not None
