"""The judge recovers biases planted in scripted judges, exactly: always-first, always-
longer, right-by-key, format-echoing and repeat-flipping judges each give the figure
their construction implies. None of these tests loads a model."""

from __future__ import annotations

import pytest

from fakes import judge_backend
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.evaluation import RunConfig, evaluate
from llmassay.judge import ModelJudge, OracleJudge, PairItem, analyse_pairs, judge_pairs, load_templates
from llmassay.judge.calibration import calibration_metrics, calibration_pairs, items_of, question_of
from llmassay.judge.templates import JudgeTemplates
from llmassay.judge.verdict import parse_pairwise, parse_rating
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError


@pytest.fixture(scope="module")
def arith():
    return load_task("arith_sample", num_fewshot=0).limited(20)


def _key(task):
    answers = {question_of(s): str(s.target) for s in task.samples}
    return lambda question: answers.get(question)


def _judge(backend, tmp_path=None):
    cache = RequestCache(tmp_path / "cache.sqlite") if tmp_path else None
    return ModelJudge(Engine(backend, cache=cache), "scripted", chat=False, max_tokens=32)


def _pairs(n=12):
    """Pairs of differing lengths; the longer one alternates between sides."""
    return [PairItem(str(i), f"q{i}", "short" if i % 2 else "a much longer answer", "a much longer answer" if i % 2 else "short")
            for i in range(n)]


def test_verdicts_are_parsed_never_guessed():
    assert parse_pairwise("reasoning … [[A]]").value == "A"
    assert parse_pairwise("[[ B ]] and again [[B]]").value == "B"
    assert parse_pairwise("it is a tie [[C]]").value == "C"
    echoed = parse_pairwise('"[[A]]" if A is better, "[[B]]" if B is better')
    assert echoed.value is None and echoed.error.startswith("conflicting verdicts")
    assert parse_pairwise("Assistant A is better").error == "no verdict"
    assert parse_rating("Rating: [[7]]", "1-10").value == "7"
    assert parse_rating("[[pass]]", "pass-fail").value == "pass"
    assert parse_rating("[[7]]", "pass-fail").value is None
    assert parse_rating("[[11]]", "1-10").value is None


def test_always_first_judge_shows_full_position_bias():
    rows = judge_pairs(_pairs(), _judge(judge_backend("first")), JudgeTemplates())
    metrics, details = analyse_pairs(rows)
    bias = metrics["first_slot_bias"]  # Wilson over 12 pairs: 12/(12 + 1.96²) − 0.5 = 0.258
    assert (bias.value, bias.ci_high) == (0.5, 0.5) and bias.ci_low == pytest.approx(0.2575, abs=1e-3)
    assert metrics["position_consistency"].value == 0.0
    assert metrics["inconsistent"].value == 1.0 and details["outcomes"]["inconsistent"] == 12
    assert metrics["longer_chosen_rate"].value == 0.5  # first slot holds the longer answer in one order of two


def test_always_longer_judge_always_chooses_the_longer_answer_and_shows_no_position_bias():
    rows = judge_pairs(_pairs(), _judge(judge_backend("longer")), JudgeTemplates())
    metrics, _ = analyse_pairs(rows)
    assert metrics["longer_chosen_rate"].value == 1.0 and metrics["longer_chosen_rate"].ci_low < 1.0
    assert "length_bias_equal_correctness" not in metrics  # no reference: correctness unknown
    assert metrics["first_slot_bias"].value == 0.0
    assert metrics["position_consistency"].value == 1.0
    assert metrics["win_b"].value == 0.5 and metrics["win_a"].value == 0.5  # the longer side alternates


def test_calibration_recovers_right_judge_and_verbosity_bias(arith):
    items = items_of(arith.samples, arith.name)
    pairs = calibration_pairs(items, seed=3)
    assert [p.group for p in pairs[:2]] == ["plain", "padded"]
    rows = judge_pairs(pairs, _judge(judge_backend("correct", _key(arith))), JudgeTemplates())
    assert "[Reference Answer]" not in rows[0]["orders"][0]["prompt"]  # the judge is not told the answer
    correct = calibration_metrics(rows)
    assert correct[0]["accuracy"].value == 1.0 and correct[0]["verbosity_effect"].value == 0.0
    assert correct[1]["informative"] is True
    longer = calibration_metrics(judge_pairs(pairs, _judge(judge_backend("longer")), JudgeTemplates()))
    assert longer[0]["accuracy_padded"].value == 0.0  # the padded wrong answer always wins
    first = calibration_metrics(judge_pairs(pairs, _judge(judge_backend("first")), JudgeTemplates()))
    assert first[0]["accuracy"].value == 0.5 and first[1]["informative"] is False
    oracle = calibration_metrics(judge_pairs(pairs, OracleJudge(), JudgeTemplates()))
    assert oracle[0]["accuracy"].value == 1.0 and oracle[0]["accuracy_padded"].value == 1.0


def test_calibration_pairs_are_reproducible_and_seeded(arith):
    items = items_of(arith.samples, arith.name)
    assert calibration_pairs(items, seed=1) == calibration_pairs(items, seed=1)
    assert calibration_pairs(items, seed=1) != calibration_pairs(items, seed=2)
    for p in calibration_pairs(items, seed=1):
        right = p.answer_a if p.correct == "a" else p.answer_b
        wrong = p.answer_b if p.correct == "a" else p.answer_a
        assert right == next(i.reference for i in items if i.id == p.id) and right not in wrong.split()


def test_unparseable_verdicts_are_counted_with_their_reason():
    rows = judge_pairs(_pairs(4), _judge(judge_backend("echo")), JudgeTemplates())
    metrics, details = analyse_pairs(rows)
    assert metrics["unparseable"].value == 1.0 and metrics["unparseable_verdicts"].value == 1.0
    assert details["unparseable_reasons"] == {"conflicting verdicts (A, B, C)": 8}
    assert "first_slot_rate" not in metrics and "position_consistency" not in metrics


def test_repetition_stability_at_temperature(tmp_path):
    stable = analyse_pairs(judge_pairs(_pairs(6), _judge(judge_backend("longer")), JudgeTemplates(), repeats=1))[0]
    flaky = judge_pairs(_pairs(6), _judge(judge_backend("longer", flip_repeats=True)), JudgeTemplates(), repeats=1)
    assert stable["repeat_stability"].value == 1.0
    assert analyse_pairs(flaky)[0]["repeat_stability"].value == 0.0
    assert flaky[0]["repeats"][0]["temperature"] == 0.7


def test_judge_requests_go_through_the_engine_cache(tmp_path):
    backend = judge_backend("longer")
    first = judge_pairs(_pairs(5), _judge(backend, tmp_path), JudgeTemplates())
    asked = len(backend.asked)
    judge = _judge(backend, tmp_path)
    again = judge_pairs(_pairs(5), judge, JudgeTemplates())
    assert asked == 10 and len(backend.asked) == 10  # the rerun is answered from the cache
    assert judge.engine.stats.cache_hits == 10 and again == first
    assert first[0]["orders"][0]["prompt"].count("[[A]]") == 1 and "raw" not in first[0]


def test_template_files_are_checked(tmp_path):
    bad = tmp_path / "pair.j2"
    bad.write_text("Compare {{ answer_a }} with nothing. {{ question }}")
    with pytest.raises(LlmassayError, match=r"pair.j2: a pairwise judge template must use \{\{ answer_b \}\}"):
        load_templates(bad)
    bad.write_text("{{ question }\n")
    with pytest.raises(LlmassayError, match=r"pair.j2: line 1: template syntax error"):
        load_templates(bad)
    good = tmp_path / "good.j2"
    good.write_text("Q: {{ question }}\nA: {{ answer_a }}\nB: {{ answer_b }}\nVerdict [[A]] or [[B]]?")
    assert load_templates(good).render_pair("q", "x", "y").startswith("Q: q\nA: x\nB: y")


@pytest.mark.parametrize(("rule", "accuracy", "informative"), [("correct", 1.0, True), ("first", 0.5, False)])
def test_probe_on_the_contract(tmp_path, arith, rule, accuracy, informative):
    out = evaluate(
        RunConfig(model="test/judge", tasks=["arith_sample"], probes=["judge_calibration"], limit=20, num_fewshot=0,
                  output_path=str(tmp_path / "run"), cache_path=str(tmp_path / "c.sqlite")),
        backend=judge_backend(rule, _key(load_task("arith_sample", num_fewshot=0))),
    )
    metrics = out.results["results"]["arith_sample"]["judge_calibration"]
    details = out.results["details"]["arith_sample"]["judge_calibration"]
    assert metrics["accuracy"]["value"] == accuracy and metrics["accuracy"]["n"] == 20
    assert details["informative"] is informative
    assert ("warning" in details) is (not informative)
    summary = out.results["summary"][0]
    assert summary["level"] == ("good" if informative else "bad")
    if rule == "first":
        assert metrics["first_slot_bias"]["value"] == 0.5 and "judge uninformative" in summary["verdict"]
