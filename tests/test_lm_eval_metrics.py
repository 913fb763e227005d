"""Planted truths for the lm-eval metrics of #24: acc_mutual_info, multi_choice_regex and
a task's own aggregation of (gold, answer) pairs. Each backend's answers are known, so each
metric's value is known before the probe runs."""

from __future__ import annotations

import pytest

from fakes import ScriptedBackend, prompt_of
from llmassay.engine.engine import Engine
from llmassay.probes.accuracy import AccuracyProbe
from llmassay.probes.base import ProbeConfig
from llmassay.tasks.filters import FILTERS
from test_lm_eval_compat import FAKE, load


def _run(task, backend):
    probe = AccuracyProbe()
    rows = probe.evaluate(task, task.samples, Engine(backend), probe.options({}), ProbeConfig())
    return rows, probe.analyse(task, rows, probe.options({}), ProbeConfig()).metrics


def test_acc_mutual_info_subtracts_the_choice_s_own_likelihood():
    """A model with a strong prior for the first choice (whatever the question) and a small
    lift for the right one after the question: `acc` follows the prior, `acc_mutual_info`
    (log P(c | q) − log P(c)) finds every right answer."""
    task = load("arc_easy_mi", 0)
    right = {s.prompt: " " + s.choices[s.target] for s in task.samples}
    first = {" " + s.choices[0] for s in task.samples}

    def score(context, continuation):
        prior = 0.0 if continuation in first else -5.0
        return prior + (1.0 if context and right.get(context) == continuation else 0.0)

    rows, metrics = _run(task, ScriptedBackend(score, str))
    firsts = sum(s.target == 0 for s in task.samples)
    assert 0 < firsts < len(task.samples)  # the planted prior decides some items wrongly
    assert metrics["acc"].value == pytest.approx(firsts / len(task.samples))
    assert metrics["acc_mutual_info"].value == 1.0
    assert all(len(r["loglikelihoods_unconditional"]) == len(r["choices"]) for r in rows)


@pytest.mark.parametrize("response,expected", [
    ("so (C) it is", "(C)"),  # the pattern
    ("I think MERCURY!", "(B)"),  # a choice's text, case and punctuation ignored, as its letter
    ("the answer: D", "(D)"),  # ': D'
    ("guilty of romance", "(E)"),  # the longest choice first: not 'Guilty' inside it
    ("no idea", "[invalid]"),
])
def test_multi_choice_regex_finds_the_letter_as_lm_eval_does(response, expected):
    step = FILTERS["multi_choice_regex"](regex_pattern=r"(\([A-Z]\))", group_select=-1, ignore_case=True,
                                         ignore_punctuation=True)
    doc = {"choices": ["Venus", "Mercury", "Mars", "Jupiter", "Guilty of Romance", "Guilty"]}
    assert step([response], doc) == [expected]


def test_a_task_s_own_aggregation_scores_the_filtered_answers():
    """afriqa's SQuAD f1 (its utils.f1, trusted code) over (gold, answer) pairs: a model that
    writes 'the <answer>' scores f1 1 (articles are dropped), one that writes nothing right 0."""
    task = load("afriqa_hau_prompt_2", 0)
    gold = {s.prompt: str(s.target) for s in task.samples}
    rows, metrics = _run(task, ScriptedBackend(FAKE.score, lambda r: f" the {gold[prompt_of(r)]}\n"))
    assert metrics["f1,remove_whitespace"].value == 1.0
    assert rows[0]["f1,remove_whitespace"] == [gold[rows[0]["prompt"]], f"the {gold[rows[0]['prompt']]}"]
    _, metrics = _run(task, ScriptedBackend(FAKE.score, lambda r: " nowhere"))
    assert metrics["f1,remove_whitespace"].value == 0.0
    assert metrics["f1,remove_whitespace"].method == "bootstrap"


SELF_CONSISTENCY = """task: sc
dataset_path: json
dataset_kwargs: {data_files: {test: d.jsonl}}
test_split: test
doc_to_text: "Q: {{q}}\\nA:"
doc_to_target: "{{a}}"
generation_kwargs: {until: ["Q:"]}
repeats: 5
filter_list:
  - name: score-first
    filter: [{function: regex, regex_pattern: "The answer is (\\\\-?[0-9]+)"}, {function: take_first}]
  - name: maj@5
    filter: [{function: regex, regex_pattern: "The answer is (\\\\-?[0-9]+)"}, {function: majority_vote}, {function: take_first}]
  - name: maj@3
    filter: [{function: take_first_k, k: 3}, {function: regex, regex_pattern: "The answer is (\\\\-?[0-9]+)"},
             {function: majority_vote}, {function: take_first}]
metric_list: [{metric: exact_match}]
"""


def test_repeats_feed_every_answer_to_the_filters(tmp_path):
    """gsm8k-cot-self-consistency's filters on `repeats: 5`. Planted: sampled with seeds 0…4
    the model answers 5, 5, 7, 7, 7. For an item whose answer is 7 the first answer and the
    majority of the first 3 are wrong and the majority of 5 right; for an item whose answer
    is 5, the reverse. Greedy (temperature 0) asks once per item and repeats that answer."""
    from llmassay.tasks.loader import load_task

    (tmp_path / "d.jsonl").write_text('{"id": "seven", "q": "3+4?", "a": "7"}\n{"id": "five", "q": "2+3?", "a": "5"}\n')
    (tmp_path / "sc.yaml").write_text(SELF_CONSISTENCY)
    task = load_task(str(tmp_path / "sc.yaml"))
    assert task.repeats == 5 and task.metrics == ["exact_match,score-first", "exact_match,maj@5", "exact_match,maj@3"]
    backend = ScriptedBackend(FAKE.score, lambda r: f" The answer is {(5, 5, 7, 7, 7)[r.seed]}.")
    probe, cfg = AccuracyProbe(), ProbeConfig(temperature=0.7)
    rows = probe.evaluate(task, task.samples, Engine(backend), probe.options({}), cfg)
    assert len(backend.asked) == 10 and sorted({r.seed for r in backend.asked}) == [0, 1, 2, 3, 4]
    seven, five = rows
    assert seven["generations"] == [f" The answer is {n}." for n in (5, 5, 7, 7, 7)]
    assert [seven[m] for m in task.metrics] == [False, True, False]
    assert [five[m] for m in task.metrics] == [True, False, True]
    assert (seven["filtered_resps,maj@5"], seven["filtered_resps,maj@3"]) == ("7", "5")
    greedy = ScriptedBackend(FAKE.score, lambda r: f" The answer is {(5, 5, 7, 7, 7)[r.seed]}.")
    rows = probe.evaluate(task, task.samples, Engine(greedy), probe.options({}), ProbeConfig())
    assert len(greedy.asked) == 2 and rows[0]["generations"] == [" The answer is 5."] * 5
    assert [rows[0][m] for m in task.metrics] == [False, False, False]


def test_repeats_must_be_a_positive_integer(tmp_path):
    from llmassay.tasks.loader import TaskError, load_task

    (tmp_path / "d.jsonl").write_text('{"id": "seven", "q": "3+4?", "a": "7"}\n')
    (tmp_path / "sc.yaml").write_text(SELF_CONSISTENCY.replace("repeats: 5", "repeats: many"))
    with pytest.raises(TaskError, match=r"sc\.yaml:\d+: field 'repeats': must be a positive integer"):
        load_task(str(tmp_path / "sc.yaml"))
