"""`--verdict loglik`: the judge's most likely of A/B after the prompt. Scripted judges whose
log-probabilities carry a known bias (always first, always longer, right by key) give
exactly the figures their construction implies, with no unparseable verdict; the choice is
scored through the engine (cached), sampled reproducibly at T > 0, and shown in the
progress bar. None of these tests loads a model."""

from __future__ import annotations

import io
import random

import pytest
from rich.console import Console
from rich.progress import Progress

from fakes import judge_backend
from judge_runs import two_runs
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.judge import PairItem, analyse_pairs, judge_pairs
from llmassay.judge.calibration import calibration_metrics, calibration_pairs, items_of, question_of
from llmassay.judge.judges import JudgeQuery, ModelJudge, load_judge
from llmassay.judge.loglik import LoglikJudge, choices, pick, verdict_context
from llmassay.judge.progress import JudgeMeter
from llmassay.judge.session import JudgeConfig, run_judgement
from llmassay.judge.templates import JudgeTemplates
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError, LoglikelihoodRequest


def _judge(rule, key=None, tmp_path=None, ties=False):
    cache = RequestCache(tmp_path / "cache.sqlite") if tmp_path else None
    return LoglikJudge(Engine(judge_backend(rule, key), cache=cache), f"loglik:{rule}", ties=ties)


def _pairs(n=12):
    """Pairs of differing lengths; the longer one alternates between sides."""
    return [PairItem(str(i), f"q{i}", "short" if i % 2 else "a much longer answer",
                     "a much longer answer" if i % 2 else "short") for i in range(n)]


def test_the_verdict_cue_ends_where_the_letter_comes():
    assert verdict_context("…\nVerdict:") == "…\nVerdict: [["
    assert verdict_context("… Verdict: [[\n") == "… Verdict: [["
    assert verdict_context("[The End of Assistant B's Answer]\n").endswith("Answer]\n\nFinal verdict: [[")
    assert choices(JudgeQuery("p", "pairwise", ("x", "y")), ties=False) == ("A", "B")
    assert choices(JudgeQuery("p", "pairwise", ("x", "y")), ties=True) == ("A", "B", "C")
    assert choices(JudgeQuery("p", "grade", ("x",), scale="pass-fail"), ties=False) == ("PASS", "FAIL")
    assert choices(JudgeQuery("p", "grade", ("x",), scale="1-10"), ties=False)[-1] == "10"


def test_pick_is_the_argmax_and_a_dead_heat_is_a_tie():
    rng = random.Random(0)
    assert pick({"A": -0.1, "B": -2.0}, 0.0, rng) == "A" and pick({"A": -4.0, "B": -2.0}, 0.0, rng) == "B"
    assert pick({"A": -3.0, "B": -3.0}, 0.0, rng) == "C"
    draws = [pick({"A": 0.0, "B": -1.0}, 1.0, random.Random(i)) for i in range(2000)]
    share = draws.count("A") / len(draws)  # softmax: e^0 / (e^0 + e^-1) = 0.731
    assert 0.70 < share < 0.76


def test_always_first_judge_by_loglik_shows_full_position_bias():
    metrics, details = analyse_pairs(judge_pairs(_pairs(), _judge("first"), JudgeTemplates()))
    assert (metrics["first_slot_bias"].value, metrics["first_slot_bias"].ci_high) == (0.5, 0.5)
    assert metrics["first_slot_bias"].ci_low == pytest.approx(0.2575, abs=1e-3)  # Wilson, 12 pairs
    assert metrics["position_consistency"].value == 0.0 and details["outcomes"]["inconsistent"] == 12
    assert metrics["unparseable"].value == 0.0 and metrics["unparseable_verdicts"].value == 0.0


def test_always_longer_judge_by_loglik_always_chooses_the_longer_answer():
    rows = judge_pairs(_pairs(), _judge("longer"), JudgeTemplates())
    metrics, _ = analyse_pairs(rows)
    assert metrics["longer_chosen_rate"].value == 1.0 and metrics["debiased_longer_chosen_rate"].value == 1.0
    assert metrics["first_slot_bias"].value == 0.0 and metrics["position_consistency"].value == 1.0
    output = rows[0]["orders"][0]["output"]  # the raw scores are stored as the judge's output
    assert output.startswith("[[") and "log P: A=" in output and " B=" in output


def test_right_judge_by_loglik_is_calibrated_and_ties_need_the_third_choice():
    task = load_task("arith_sample", num_fewshot=0).limited(12)
    answers = {question_of(s): str(s.target) for s in task.samples}
    pairs = calibration_pairs(items_of(task.samples, task.name), seed=1)
    metrics, details = calibration_metrics(judge_pairs(pairs, _judge("correct", answers.get), JudgeTemplates()))
    assert metrics["accuracy"].value == 1.0 and metrics["accuracy_padded"].value == 1.0 and details["informative"]
    # Two equal answers: the rule says tie. Without C the two letters are a dead heat (→ tie);
    # with C it is the judge's own most likely choice.
    same = [PairItem("s", "q", "7", "7")]
    for ties in (False, True):
        row = judge_pairs(same, _judge("longer", ties=ties), JudgeTemplates())[0]
        assert row["outcome"] == "tie" and ("C=" in row["orders"][0]["output"]) is ties


def test_loglik_repeats_are_seeded_draws_and_requests_are_cached(tmp_path):
    first = judge_pairs(_pairs(6), _judge("longer", tmp_path=tmp_path), JudgeTemplates(), repeats=2)
    judge = _judge("longer", tmp_path=tmp_path)
    again = judge_pairs(_pairs(6), judge, JudgeTemplates(), repeats=2)
    assert again == first and len(judge.engine.backend.asked) == 0  # all from the cache
    assert judge.engine.stats.cache_hits == 6 * 2 * 2  # 6 pairs, 2 orders, A and B; repeats reuse them
    metrics, _ = analyse_pairs(first)
    assert metrics["repeat_stability"].value == 1.0  # log P gap of 5 nats: T = 0.7 draws agree


def test_session_records_the_mode_and_moves_the_bar(tmp_path):
    a, b = two_runs(tmp_path)
    progress = Progress(console=Console(file=io.StringIO()))
    meter = JudgeMeter(progress)
    judge = _judge("longer")
    result = run_judgement(JudgeConfig(str(a), str(b), "scripted", str(tmp_path / "j"), calibration_limit=5,
                                       repeats=0), judge, meter)
    assert result["judge"]["verdict"] == "loglik" and result["metrics"]["unparseable"]["value"] == 0.0
    assert meter.phases == ["calibration", "pairs, both orders"]
    task = progress.tasks[0]
    assert task.description == "pairs, both orders" and task.completed == task.total == 6 * 2 * 2


def test_bad_verdict_settings_are_one_line(tmp_path):
    with pytest.raises(LlmassayError, match="--verdict vote: unknown"):
        load_judge("llamacpp/none", verdict="vote")
    a, b = two_runs(tmp_path)
    with pytest.raises(LlmassayError, match="--ties applies to --verdict loglik only"):
        run_judgement(JudgeConfig(str(a), str(b), "oracle", str(tmp_path / "j"), ties=True))


@pytest.mark.parametrize(("rule", "accuracy", "bias"), [("correct", 1.0, 0.0), ("first", 0.5, 0.5)])
def test_calibration_probe_with_loglik_verdicts(tmp_path, rule, accuracy, bias):
    from llmassay.evaluation import RunConfig, evaluate

    task = load_task("arith_sample", num_fewshot=0)
    answers = {question_of(s): str(s.target) for s in task.samples}
    backend = judge_backend(rule, answers.get)
    out = evaluate(
        RunConfig(model="test/judge", tasks=["arith_sample"], probes=["judge_calibration"], limit=8, num_fewshot=0,
                  output_path=str(tmp_path / "run"), cache_path=str(tmp_path / "c.sqlite"),
                  probe_options={"judge_calibration.verdict": "loglik"}),
        backend=backend,
    )
    assert backend.asked and all(isinstance(r, LoglikelihoodRequest) for r in backend.asked)
    metrics = out.results["results"]["arith_sample"]["judge_calibration"]
    assert metrics["accuracy"]["value"] == accuracy and metrics["first_slot_bias"]["value"] == bias
    assert metrics["unparseable_verdicts"]["value"] == 0.0


def test_swap_averaging_removes_a_planted_slot_prior():
    """Log P = 3 nats for slot A whatever it shows, + 1 for the right answer: every verdict
    says A (accuracy 0.5, chance), but averaged over both orders the prior cancels and
    the judge's real preference is recovered exactly (debiased accuracy 1)."""
    from fakes import ScriptedBackend

    task = load_task("arith_sample", num_fewshot=0).limited(10)
    answers = {question_of(s): str(s.target) for s in task.samples}
    knows = judge_backend("correct", answers.get)
    backend = ScriptedBackend(lambda c, x: (3.0 if x == "A" else 0.0) + (1.0 if knows._score(c, x) == 0 else 0.0),
                              lambda r: "", identity="prior+knowledge")
    rows = judge_pairs(calibration_pairs(items_of(task.samples, task.name), seed=2), LoglikJudge(Engine(backend), "p"),
                       JudgeTemplates())
    metrics, details = calibration_metrics(rows)
    assert metrics["accuracy"].value == 0.5 and details["informative"] is False
    assert metrics["accuracy_debiased"].value == 1.0 and metrics["accuracy_padded_debiased"].value == 1.0
    pairs, _ = analyse_pairs(rows)
    assert pairs["first_slot_bias"].value == 0.5 and pairs["debiased_win_a"].value + pairs["debiased_win_b"].value == 1.0
    # The padded wrong answer is always the longer one: a judge that knows the answer shuns it.
    padded, _ = analyse_pairs([r for r in rows if r["group"] == "padded"])
    assert padded["longer_chosen_rate"].value == 0.5 and padded["debiased_longer_chosen_rate"].value == 0.0
    generated, _ = analyse_pairs(judge_pairs(_pairs(4), ModelJudge(Engine(judge_backend("first")), "g", chat=False),
                                             JudgeTemplates()))
    assert "debiased_win_a" not in generated  # generated verdicts carry no log-probabilities


def test_rubric_grades_by_loglik():
    from judge_runs import QUESTIONS
    from llmassay.judge.grading import grade_answers, grade_metrics
    from llmassay.judge.runs import Answer

    key = {q: t for _, q, t in QUESTIONS}
    answers = [Answer("arith", i, q, t if n % 3 else "999", t) for n, (i, q, t) in enumerate(QUESTIONS)]
    rows = grade_answers(answers, _judge("correct", key.get), JudgeTemplates(), "exact result", "pass-fail")
    assert [r["grade"] for r in rows] == ["fail", "pass", "pass", "fail", "pass", "pass"]
    assert "log P: PASS=" in rows[0]["output"] and grade_metrics(rows, "pass-fail")["score"].value == 4 / 6
