"""The report shows judge figures (with the uninformative warning) and human agreement
when a judgement and labels sit next to the run."""

from __future__ import annotations

import pytest

from fakes import hashed_backend, judge_backend
from llmassay.engine.engine import Engine
from llmassay.evaluation import RunConfig, evaluate
from llmassay.judge.judges import ModelJudge
from llmassay.judge.session import JudgeConfig, run_judgement
from llmassay.report import write_report

pytest.importorskip("krippendorff", reason="agreement statistics are in the [judge] extra")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    evaluate(RunConfig(model="test/hashed", tasks=["arith_sample"], limit=6, output_path=str(root / "run"),
                       cache_path=str(root / "c.sqlite")), backend=hashed_backend())
    return root / "run"


def test_report_shows_judge_and_agreement(run):
    from llmassay.review.queue import load_queue
    from llmassay.review.store import LabelStore

    judged = run / "judge"
    run_judgement(JudgeConfig(str(run), str(run), "oracle", str(judged), calibration_limit=10, repeats=0))
    store = LabelStore(judged)
    keys = [it.key for it in load_queue(judged)]
    for key, ann, bob in zip(keys, ["tie", "tie", "a", "tie"], ["tie", "b", "a", "tie"]):
        store.put(key, "ann", ann)
        store.put(key, "bob", bob)
    html = write_report(run).read_text()
    assert "judge (oracle)" in html and "position_consistency" in html and "calibration on arith_sample" in html
    assert "human review" in html and "ann vs bob" in html and "ann vs judge" in html
    assert "judge uninformative" not in html


def test_report_flags_an_uninformative_judge(run, tmp_path):
    judge = ModelJudge(Engine(judge_backend("first")), "first", chat=False)
    run_judgement(JudgeConfig(str(run), str(run), "scripted", str(run / "judge_first"), calibration_limit=6), judge)
    html = write_report(run, tmp_path / "r.html").read_text()
    assert html.count("judge uninformative") >= 10  # next to every figure, and as a note


def test_report_on_a_judge_output_folder(tmp_path, capsys):
    """`llmassay report` on `llmassay judge`'s own --output-path (no results_*.json there)
    writes the judge's tables, as the docs say; hostile answers stay text."""
    from judge_runs import HOSTILE, two_runs
    from llmassay.cli import main

    a, b = two_runs(tmp_path)
    judged = tmp_path / "judged"
    run_judgement(JudgeConfig(str(a), str(b), "oracle", str(judged), calibration_limit=10, repeats=0))
    assert main(["report", str(judged)]) == 0
    assert f"report: {judged / 'report.html'}" in capsys.readouterr().out
    html = (judged / "report.html").read_text()
    assert "judge (oracle)" in html and "position_consistency" in html and "calibration on arith_sample" in html
    assert f"{a} vs {b}" in html and HOSTILE not in html
    (judged / "judge_results.json").write_text("{broken")
    assert main(["report", str(judged)]) == 2
    err = capsys.readouterr().err.strip()
    assert "judge_results.json: cannot read" in err and "\n" not in err
    assert main(["report", str(tmp_path / "run_a")]) == 2  # a folder with neither: the run error as before
    assert "no results_*.json" in capsys.readouterr().err
