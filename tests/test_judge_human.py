"""Human labels feed `llmassay compare` and the report: with labels (A/B/tie and rubric
scores) next to a run, both show judge–human and human–human agreement with CIs; with
none, compare shows no review table."""

from __future__ import annotations

import pytest

from fakes import hashed_backend
from llmassay.cli import main
from llmassay.evaluate import RunConfig, evaluate
from llmassay.judge.session import JudgeConfig, run_judgement
from llmassay.report import write_report

pytest.importorskip("sklearn", reason="agreement statistics are in the [judge] extra")


def _run(root, salt):
    evaluate(RunConfig(model="test/hashed", tasks=["arith_sample"], limit=6, output_path=str(root),
                       cache_path=str(root.parent / f"{salt}.sqlite")), backend=hashed_backend(salt))
    return root


@pytest.fixture
def labelled(tmp_path):
    """Runs A and B, the oracle's judgement of A vs B under A (with 1-10 grades), and two
    reviewers' labels: ann agrees with the judge on every verdict, bob on half."""
    from llmassay.review.queue import load_queue
    from llmassay.review.store import LabelStore

    a, b = _run(tmp_path / "a", "x"), _run(tmp_path / "b", "y")
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("exact result")
    judged = a / "judge"
    run_judgement(JudgeConfig(str(a), str(b), "oracle", str(judged), rubric=str(rubric), calibration_limit=2, repeats=0))
    items = load_queue(judged)
    store = LabelStore(judged)
    for i, it in enumerate(items):
        store.put(it.key, "ann", it.judge)
        store.put(it.key, "bob", it.judge if i % 2 else {"a": "b", "b": "a", "tie": "a"}[it.judge])
        store.put_score(it.key, "a", "ann", it.judge_scores[0])
        store.put_score(it.key, "b", "ann", it.judge_scores[1])
    store.close()
    return a, b, items


def test_compare_shows_judge_human_agreement(labelled, capsys):
    a, b, items = labelled
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "human review (judge)" in out and "Cohen's kappa" in out
    ann = next(line for line in out.splitlines() if "ann vs judge" in line)
    assert "1.000" in ann and f"│ {len(items)} " in ann  # ann copies the judge: kappa 1 on every item
    assert "bob vs judge" in out and "weighted kappa" in out


def test_compare_without_labels_has_no_review_table(tmp_path, capsys):
    a, b = _run(tmp_path / "a", "x"), _run(tmp_path / "b", "y")
    assert main(["compare", str(a), str(b)]) == 0
    assert "human review" not in capsys.readouterr().out


def test_report_shows_score_agreement(labelled, tmp_path):
    a, _, items = labelled
    html = write_report(a, tmp_path / "r.html").read_text()
    assert "human review" in html and "rubric scores 1-10" in html and "ann vs judge" in html
    assert "answers scored" in html and str(2 * len(items)) in html


def test_report_names_loglik_verdicts_and_shows_debiased_figures(tmp_path):
    from fakes import judge_backend
    from llmassay.engine.engine import Engine
    from llmassay.judge.loglik import LoglikJudge

    a, b = _run(tmp_path / "a", "x"), _run(tmp_path / "b", "y")
    run_judgement(JudgeConfig(str(a), str(b), "scripted", str(a / "judge"), calibration_limit=4, repeats=0),
                  LoglikJudge(Engine(judge_backend("first")), "first"))
    html = write_report(a, tmp_path / "r.html").read_text()
    assert "judge (first, verdicts by log-likelihood)" in html and "accuracy_debiased" in html
    assert "debiased_win_a" in html and "judge uninformative" in html
