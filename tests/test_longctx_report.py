"""Both long-context probes run end to end through `evaluate` (results file, resume), and
their report sections draw the length x depth heatmap and the position curve, with the
model's text escaped."""

from __future__ import annotations

import json
import re

from fakes import WindowBackend
from llmassay.evaluation import RunConfig, evaluate
from llmassay.report.html import build_report
from llmassay.report.rundir import load_run
from llmassay.tasks.loader import load_task

HOSTILE = "<script>alert(1)</script>"


class Hostile(WindowBackend):
    """Answers right, then adds markup a report must not execute."""

    def generate(self, reqs):
        return [type(g)(g.text + " " + HOSTILE, *list(g.__dict__.values())[1:]) for g in super().generate(reqs)]


def facts(task: str, fact_field: str) -> dict[str, tuple[str, str]]:
    return {s.doc[fact_field]: (s.doc["question"], s.doc["answer"]) for s in load_task(task).samples}


def test_needle_and_position_end_to_end_with_report(tmp_path):
    every = {**facts("needle_sample", "needle"), **facts("position_sample", "passage")}
    cfg = RunConfig(model="test/window", tasks=["needle_sample", "position_sample"], probes=["needle", "position"],
                    jobs=[("needle_sample", "needle", 4), ("position_sample", "position", 6)],
                    output_path=str(tmp_path / "run"), cache_path=str(tmp_path / "cache.sqlite"),
                    probe_options={"needle.lengths": "256,1024,2048", "needle.depths": "0,0.5,1", "position.passages": 4})
    out = evaluate(cfg, backend=Hostile(every, 700))
    results = out.results["results"]
    needle, position = results["needle_sample"]["needle"], results["position_sample"]["position"]
    assert needle["effective_length"]["value"] == 256  # a 700-word reader loses needles at 1024 and 2048
    assert needle["accuracy[2048@1]"]["value"] == 1.0 and needle["accuracy[2048@0]"]["value"] == 0.0
    assert position["accuracy[4]"]["value"] == 1.0 and position["closed_book"]["value"] == 0.0

    again = evaluate(cfg, backend=Hostile(every, 700))  # resumed: the same rows, nothing recomputed
    assert [o.samples for o in again.probe_results] == [o.samples for o in out.probe_results]

    html = build_report(load_run(tmp_path / "run"))
    assert "needle found, by context length x depth" in html
    assert "accuracy by position of the document holding the answer" in html
    assert HOSTILE not in html and "<script>alert" not in html
    rows = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1)
                      .replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&"))
    assert sum(HOSTILE in r["out"] for r in rows) == 4 * 9 + 6 * 4
