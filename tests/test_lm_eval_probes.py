"""Probes on lm-eval task files: the ones that put choices after one prompt refuse
winogrande-style per-choice contexts in one line; those that can run, run (#24 item 6)."""

from __future__ import annotations

import json

import pytest

from llmassay.probes._registry import probe_class
from test_lm_eval_cli import run, scripted  # noqa: F401  (the fixture)
from test_lm_eval_compat import REFERENCE, load


@pytest.mark.parametrize("probe", ["brittleness", "structured"])
def test_per_choice_context_tasks_are_refused_by_name(probe):
    reason = probe_class(probe)().supports(load("winogrande"))
    assert reason is not None and "\n" not in reason
    assert "winogrande" in reason
    if probe == "brittleness":  # the reason is the per-choice contexts, not the task type
        assert reason.startswith("task 'winogrande' has one context per choice (lm-eval's partial evaluation")
        assert probe_class(probe)().supports(load("arc_easy")) is None


def test_accuracy_scores_per_choice_contexts():
    assert probe_class("accuracy")().supports(load("winogrande")) is None


def test_the_run_stops_before_the_model_loads_with_one_line(tmp_path, scripted, capsys):  # noqa: F811
    assert run(tmp_path, "--tasks", "winogrande", "--trust-task-code", "--probe", "brittleness") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --probe brittleness: task 'winogrande' has one context per choice")
    assert not scripted.asked  # nothing was sent to the model


def test_rolling_perplexity_through_the_cli_reads_like_lm_eval_s(tmp_path, scripted, capsys):  # noqa: F811
    assert run(tmp_path, "--tasks", "wikitext", "--trust-task-code", "--lm-eval-results") == 0
    [results_file] = (tmp_path / "out" / "test__fake-model").glob("results_*.json")
    doc = json.loads(results_file.read_text())
    ref = REFERENCE["runs"]["wikitext@0"]["metrics"]
    for key in ("word_perplexity,none", "byte_perplexity,none", "bits_per_byte,none"):
        assert doc["results"]["wikitext"][key] == pytest.approx(ref[key])
    assert doc["higher_is_better"]["wikitext"] == {"word_perplexity": False, "byte_perplexity": False,
                                                   "bits_per_byte": False}
    [samples] = (tmp_path / "out" / "test__fake-model").glob("samples_wikitext_*.jsonl")
    lines = [json.loads(x) for x in samples.read_text().splitlines()]
    assert [x["arguments"]["gen_args_0"]["arg_0"] for x in lines] == REFERENCE["runs"]["wikitext@0"]["prompts"]
    assert all(str(x["word_perplexity"][0]) == x["resps"][0][0] for x in lines)  # (log-likelihood, words)


def test_rolling_windows_are_cached_like_any_request(tmp_path):
    """A rerun reads every window from the request cache: nothing is computed twice."""
    from llmassay.engine.cache import RequestCache
    from llmassay.engine.engine import Engine
    from llmassay.engine.rolling import loglikelihood_rolling
    from test_lm_eval_compat import Backend

    texts = ["a document long enough to need several windows of forty-eight bytes each, " * 3, "short"]
    first = Engine(Backend(), RequestCache(tmp_path / "cache.sqlite"))
    got = loglikelihood_rolling(first, texts)
    again = Engine(Backend(), RequestCache(tmp_path / "cache.sqlite"))
    assert loglikelihood_rolling(again, texts) == got
    assert got[0].n_windows == 5 and first.stats.computed == 6 and again.stats.computed == 0


def test_brittleness_runs_on_an_lm_eval_task_s_rendered_prompts(tmp_path, scripted):  # noqa: F811
    """arc_easy from lm-eval's own file: brittleness runs, and its canonical prompts are the
    ones lm-eval renders (each reference prompt is among those sent to the model)."""
    assert run(tmp_path, "--tasks", "arc_easy", "--probe", "brittleness", "--lm-eval-fewshot") == 0
    [results_file] = (tmp_path / "out").glob("results_*.json")
    metrics = json.loads(results_file.read_text())["results"]["arc_easy"]["brittleness"]
    assert {"value", "ci_low", "ci_high", "n"} <= set(next(iter(metrics.values())))
    sent = {getattr(r, "context", None) for r in scripted.asked}
    assert set(REFERENCE["runs"]["arc_easy@0"]["prompts"]) <= sent
