"""Human labels feed `llmassay compare` and the report: with labels (A/B/tie and rubric
scores) next to a run, both show judge–human and human–human agreement with CIs; with
none, compare shows no review table."""

from __future__ import annotations

import pytest

from fakes import hashed_backend
from llmassay.cli import main
from llmassay.evaluation import RunConfig, evaluate
from llmassay.judge.session import JudgeConfig, run_judgement
from llmassay.report import write_report

pytest.importorskip("krippendorff", reason="agreement statistics are in the [judge] extra")


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


def _key_run(root, right):
    """A run on arith_sample answering item i right when right(i), else "999"."""
    import json

    from fakes import RuleBackend
    from llmassay.tasks.loader import bundled_tasks

    path = bundled_tasks()["arith_sample"].parent / "arith_sample.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    answers = {r["input"]: (r["target"] if right(i) else "999") for i, r in enumerate(rows)}
    rule = lambda prompt: answers[max(answers, key=lambda k: (prompt.rfind(k), len(k)))]  # noqa: E731 (last asked)
    evaluate(RunConfig(model="test/rule", tasks=["arith_sample"], limit=8, output_path=str(root),
                       cache_path=str(root.parent / f"{root.name}.sqlite")), backend=RuleBackend(rule))
    return root


@pytest.fixture
def varied(tmp_path):
    """A is right on all 8 items, B on every third: the oracle's verdicts are 'a' on 5 and
    'tie' on 3. ann copies the judge; bob says 'tie' everywhere."""
    from llmassay.review.queue import load_queue
    from llmassay.review.store import LabelStore

    a, b = _key_run(tmp_path / "a", lambda i: True), _key_run(tmp_path / "b", lambda i: i % 3 == 0)
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("exact result")
    run_judgement(JudgeConfig(str(a), str(b), "oracle", str(a / "judge"), rubric=str(rubric), calibration_limit=2,
                              repeats=0))
    items = load_queue(a / "judge")
    store = LabelStore(a / "judge")
    for it in items:
        store.put(it.key, "ann", it.judge)
        store.put(it.key, "bob", "tie")
        store.put_score(it.key, "a", "ann", it.judge_scores[0])
        store.put_score(it.key, "b", "ann", it.judge_scores[1])
    store.close()
    return a, b, items


def test_compare_json_and_html_carry_judge_human_agreement(varied, tmp_path):
    """--json holds κ with its CI as numbers for every rater pair (ann copies the judge:
    κ = 1 and CI [1, 1]; bob's constant 'tie' agrees on 3 of 8 by chance only: κ = 0);
    --html shows the same tables."""
    import json

    a, b, items = varied
    assert sorted(it.judge for it in items) == ["a"] * 5 + ["tie"] * 3
    html, js = tmp_path / "cmp.html", tmp_path / "cmp.json"
    assert main(["compare", str(a), str(b), "--json", str(js), "--html", str(html)]) == 0
    (review,) = json.loads(js.read_text())["review"]
    assert review["probe"] == "human review" and review["raw"]["reviewers"]["ann"] == {
        "items_labelled": len(items), "answers_scored": 2 * len(items)}
    pairs = {tuple(p["raters"]): p for p in review["raw"]["labels"]["cohen_kappa"]}
    ann = pairs[("ann", "judge")]
    assert (ann["kappa"], ann["n"], ann["observed_agreement"]) == (1.0, len(items), 1.0)
    assert ann["ci_low"] == ann["ci_high"] == 1.0
    bob = pairs[("bob", "judge")]
    assert (bob["kappa"], bob["observed_agreement"]) == (0.0, 3 / 8)
    scored = {tuple(p["raters"]): p for p in review["raw"]["scores"]["weighted_kappa"]}
    assert scored[("ann", "judge")]["kappa"] == 1.0 and scored[("ann", "judge")]["n"] == 2 * len(items)
    assert scored[("ann", "judge")]["mean_abs_difference"] == 0.0
    page = html.read_text()
    assert "Human review (judge): agreement" in page and "ann vs judge" in page and "bob vs judge" in page
    assert "rubric scores 1-10" in page


def test_compare_json_without_labels_has_empty_review(tmp_path):
    import json

    a, b = _run(tmp_path / "a", "x"), _run(tmp_path / "b", "y")
    assert main(["compare", str(a), str(b), "--json", str(tmp_path / "c.json"), "--html", str(tmp_path / "c.html")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["review"] == []
    assert "Human review" not in (tmp_path / "c.html").read_text()
