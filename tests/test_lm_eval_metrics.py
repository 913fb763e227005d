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
