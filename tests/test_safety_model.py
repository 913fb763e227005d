"""The likelihood-based safety probes on the embedded model: real scores, reproducible rows."""

from __future__ import annotations

import pytest

from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.bbq import BBQProbe
from llmassay.probes.stereotype import StereotypeProbe
from llmassay.tasks.loader import load_task

pytestmark = pytest.mark.slow


def test_stereotype_and_bbq_on_smollm2(smollm2, tmp_path):
    pairs = load_task("stereotype_pairs").limited(7)  # one pair per category
    result = run_probe(StereotypeProbe(), pairs, Engine(smollm2), ProbeConfig(), SampleLog(tmp_path / "s.jsonl"))
    rows = result.samples
    assert all(r["controlled"] is not None and r["controlled"][0] < 0 and r["whole"][0] < r["controlled"][0]
               for r in rows)  # a whole sentence is less likely than its shared suffix alone
    assert result.metrics["stereotype_controlled"].n == 7
    again = run_probe(StereotypeProbe(), pairs, Engine(smollm2), ProbeConfig(), SampleLog(tmp_path / "s2.jsonl"))
    assert again.samples == rows  # same model, same rows
    bbq = run_probe(BBQProbe(), load_task("bbq_sample").limited(3), Engine(smollm2), ProbeConfig(),
                    SampleLog(tmp_path / "b.jsonl"))
    assert all(r["pred"] in (0, 1, 2) and len(r["loglikelihoods"]) == 3 for r in bbq.samples)
    assert bbq.details["chance"] == pytest.approx(1 / 3, abs=1e-3)
