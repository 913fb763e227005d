"""The review queue puts the most brittle items next (after the judge's inconsistencies and
judge-vs-metric disagreements): for a run's single answers and for a judgement's pairs,
from the brittleness probe's rows in the judged runs' samples files (planted flips)."""

from __future__ import annotations

import json

from judge_runs import two_runs
from llmassay.judge.session import JudgeConfig, run_judgement
from llmassay.review.queue import REASONS, load_queue


def _plant_flips(run_dir, flips):
    """Brittleness rows for item id → number of extra distinct answers under its variants."""
    (path,) = run_dir.glob("samples_*.jsonl")
    rows = [{"id": i, "variants": {"canonical": {"pred": "0"}, **{f"v{k}": {"pred": str(k + 1)} for k in range(n)}}}
            for i, n in flips.items()]
    path.write_text(path.read_text() + "".join(json.dumps(r) + "\n" for r in rows))


def test_brittle_items_come_next_most_brittle_first(tmp_path):
    a, b = two_runs(tmp_path)
    _plant_flips(a, {"q4": 1, "q1": 3})
    _plant_flips(b, {"q4": 1})
    single = load_queue(a)
    assert [(it.key, it.reason, it.flips) for it in single[:2]] == [("arith/q1", REASONS[2], 3.0),
                                                                   ("arith/q4", REASONS[2], 1.0)]
    assert all(it.reason == "" and it.flips == 0 for it in single[2:]) and len(single) == 6
    run_judgement(JudgeConfig(str(a), str(b), "oracle", str(tmp_path / "j"), calibration_limit=2, repeats=0))
    pairs = load_queue(tmp_path / "j")
    assert [(it.key, it.reason, it.flips) for it in pairs[:2]] == [("arith/q1", REASONS[2], 3.0),
                                                                  ("arith/q4", REASONS[2], 2.0)]  # A's + B's
    assert [it.key for it in pairs[2:]] == ["arith/q0", "arith/q2", "arith/q3", "arith/q5"]
