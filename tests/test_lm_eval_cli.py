"""`llmassay run` on lm-eval task folders: tags expand, flags reach the loader, and the
lm-eval-shaped results file carries lm-eval's keys and lm-eval's numbers."""

from __future__ import annotations

import json
import re
import sys

import pytest

import llmassay.evaluation
from llmassay.cli import main
from test_lm_eval_compat import REFERENCE, ROOT, Backend


@pytest.fixture()
def scripted(monkeypatch):
    backend = Backend()
    monkeypatch.setattr(llmassay.evaluation, "load_executor", lambda *a, **k: backend)
    return backend


def run(tmp_path, *extra: str) -> int:
    return main(["run", "--model", "test/fake-model", "--include-path", str(ROOT / "tasks"), "--data-dir",
                 str(ROOT / "data"), "--output-path", str(tmp_path / "out"), "--no-cache", *extra])


def test_a_tag_runs_its_tasks_and_results_read_like_lm_eval_s(tmp_path, scripted):
    assert run(tmp_path, "--tasks", "ai2_arc", "--num-fewshot", "3", "--lm-eval-fewshot", "--lm-eval-results") == 0
    [results_file] = (tmp_path / "out" / "test__fake-model").glob("results_*.json")
    doc = json.loads(results_file.read_text())
    assert set(doc["results"]) == {"arc_easy", "arc_challenge"}
    ref = REFERENCE["runs"]["arc_easy@3"]["metrics"]
    assert doc["results"]["arc_easy"]["acc,none"] == pytest.approx(ref["acc,none"])
    assert doc["results"]["arc_easy"]["acc_norm,none"] == pytest.approx(ref["acc_norm,none"])
    assert {"acc_stderr,none", "alias"} <= set(doc["results"]["arc_easy"])
    assert doc["versions"] == {"arc_easy": 1.0, "arc_challenge": 1.0} and doc["n-shot"]["arc_easy"] == 3
    assert doc["configs"]["arc_challenge"]["dataset_name"] == "ARC-Challenge"
    assert doc["higher_is_better"]["arc_easy"] == {"acc": True, "acc_norm": True}
    assert {"config", "git_hash", "date", "total_evaluation_time_seconds", "n-samples"} <= set(doc)
    assert "ci_low" in doc["llmassay"]["results"]["arc_easy"]["accuracy"]["acc"]
    [samples] = (tmp_path / "out" / "test__fake-model").glob("samples_arc_easy_*.jsonl")
    lines = [json.loads(x) for x in samples.read_text().splitlines()]
    assert [x["doc_id"] for x in lines] == list(range(5))
    assert [x["arguments"]["gen_args_0"]["arg_0"] for x in lines] == REFERENCE["runs"]["arc_easy@3"]["prompts"]
    assert {"doc", "target", "resps", "filtered_resps", "filter", "metrics", "doc_hash", "prompt_hash",
            "target_hash"} <= set(lines[0])


def test_filters_are_reported_one_result_each(tmp_path, scripted):
    assert run(tmp_path, "--tasks", "gsm8k", "--lm-eval-fewshot", "--lm-eval-results") == 0
    [results_file] = (tmp_path / "out" / "test__fake-model").glob("results_*.json")
    got = json.loads(results_file.read_text())["results"]["gsm8k"]
    ref = REFERENCE["runs"]["gsm8k@None"]["metrics"]
    assert got["exact_match,strict-match"] == pytest.approx(ref["exact_match,strict-match"])
    assert got["exact_match,flexible-extract"] == pytest.approx(ref["exact_match,flexible-extract"])


def test_function_tags_are_refused_without_the_flag(tmp_path, scripted, capsys):
    assert run(tmp_path, "--tasks", "hellaswag") == 2
    assert "pass --trust-task-code" in capsys.readouterr().err
    assert run(tmp_path, "--tasks", "hellaswag", "--trust-task-code") == 0


def test_loglikelihood_tasks_report_perplexity_lower_is_better(tmp_path, scripted):
    assert run(tmp_path, "--tasks", "lambada_openai", "--lm-eval-results") == 0
    [results_file] = (tmp_path / "out" / "test__fake-model").glob("results_*.json")
    doc = json.loads(results_file.read_text())
    ref = REFERENCE["runs"]["lambada_openai@0"]["metrics"]
    assert doc["results"]["lambada_openai"]["perplexity,none"] == pytest.approx(ref["perplexity,none"])
    assert doc["results"]["lambada_openai"]["acc,none"] == pytest.approx(ref["acc,none"])
    assert doc["higher_is_better"]["lambada_openai"] == {"perplexity": False, "acc": True}


def test_groups_and_tags_expand_to_their_task_files(tmp_path):
    from llmassay.tasks.registry import TaskIndex

    (tmp_path / "g.yaml").write_text("group: my_suite\ntask:\n  - ai2_arc\n  - piqa\n"
                                     "aggregate_metric_list:\n  - metric: acc\n")
    index = TaskIndex.scan([ROOT / "tasks", tmp_path])
    assert [(a.metric, a.weight_by_size) for a in index.group_specs["my_suite"].aggregate] == [("acc", True)]
    names = [p.rsplit("/", 2)[-2:] for p in index.expand("my_suite")]
    assert names == [["arc", "arc_challenge.yaml"], ["arc", "arc_easy.yaml"], ["piqa", "piqa.yaml"]]
    assert index.expand("mmlu_stem_tasks") == [str(ROOT / "tasks/mmlu/default/mmlu_anatomy.yaml"),
                                               str(ROOT / "tasks/mmlu/default/mmlu_astronomy.yaml")]
    assert index.expand("not_a_task") == ["not_a_task"]  # left for load_task to refuse by name


def test_a_group_reports_its_aggregate_as_lm_eval_does(tmp_path, scripted, capsys):
    """science_mix: acc unweighted, acc_norm weighted by size, over a tag, a task and a nested
    group (mmlu has no acc_norm: left out), equal to lm-eval's group scores."""
    assert run(tmp_path, "--tasks", "science_mix", "--trust-task-code", "--lm-eval-results") == 0
    ref = REFERENCE["groups"]["science_mix"]
    assert ("group science_mix (5 tasks): acc,none 0.1467 [0.0134, 0.2799], acc_norm,none 0.1333 [0.0000, 0.2934]"
            in capsys.readouterr().err)
    [results_file] = (tmp_path / "out" / "test__fake-model").glob("results_*.json")
    doc = json.loads(results_file.read_text())
    for key in ("acc,none", "acc_norm,none", "acc_stderr,none", "acc_norm_stderr,none"):  # stderr: pooled / unweighted
        assert doc["results"]["science_mix"][key] == pytest.approx(ref["science_mix"][key])
        assert doc["groups"]["science_mix"][key] == pytest.approx(ref["science_mix"][key])
    assert doc["llmassay"]["groups"]["science_mix"]["acc,none"]["ci_low"] == pytest.approx(0.0134, abs=5e-5)
    assert doc["group_subtasks"]["science_mix"] == ["arc_challenge", "arc_easy", "sciq", "mmlu_anatomy", "mmlu_astronomy"]
    assert doc["results"]["mmlu_stem"]["acc,none"] == pytest.approx(ref["mmlu_stem"]["acc,none"])  # the nested group
    assert doc["results"]["mmlu_stem"]["acc_stderr,none"] == pytest.approx(ref["mmlu_stem"]["acc_stderr,none"])
    [native] = (tmp_path / "out").glob("results_*.json")
    ours = json.loads(native.read_text())["groups"]["science_mix"]
    assert ours["results"]["acc,none"] == pytest.approx(ref["science_mix"]["acc,none"])
    for key, se in (("acc,none", "acc_stderr,none"), ("acc_norm,none", "acc_norm_stderr,none")):
        metric = ours["metrics"][key]  # our interval: value ± 1.96 × lm-eval's group stderr, inside [0, 1]
        assert metric["stderr"] == pytest.approx(ref["science_mix"][se])
        assert metric["ci_high"] == pytest.approx(metric["value"] + 1.959964 * metric["stderr"])
        assert metric["ci_low"] == pytest.approx(max(0.0, metric["value"] - 1.959964 * metric["stderr"]))
        assert metric["n"] == (15 if key == "acc_norm,none" else 27)  # 3 × 5 items; + 2 × 6 mmlu items for acc
    from llmassay.report.html import write_report

    html = write_report(tmp_path / "out").read_text()  # the report shows each group with its interval
    assert "science_mix" in html and "mmlu_stem" in html and "0.1467" in html and "[0.0134, 0.2799]" in html
    assert "member tasks: arc_challenge, arc_easy, sciq, mmlu_anatomy, mmlu_astronomy" in html


@pytest.mark.parametrize("task", sorted(REFERENCE["files"]))
def test_lm_eval_results_files_are_what_lm_eval_writes(tmp_path, scripted, task):
    """The results entry and every samples line equal the files lm-eval 0.4.13's
    EvaluationTracker wrote for the same task and scripted model (scripts/lm_eval_reference.py,
    `written_files`): loglikelihood (lambada: `[ctx, " continuation"]`, its per-document
    perplexity and acc), rolling (wikitext, pile: stderrs "N/A"), truthfulqa_mc2's
    probability-mass `acc` from its own process_results, multiple choice, generation (filters,
    bleu/chrf/ter's (gold, answer) items, afriqa's own f1 aggregation: stderr "N/A")."""
    ref = REFERENCE["files"][task]
    assert run(tmp_path, "--tasks", task, "--num-fewshot", "0", "--trust-task-code", "--lm-eval-results") == 0
    folder = tmp_path / "out" / "test__fake-model"
    [results_file] = folder.glob("results_*.json")
    entry = json.loads(results_file.read_text())["results"][task]
    assert list(entry) == list(ref["results"])
    for key, want in ref["results"].items():
        if key.split("_stderr,")[0] in ("perplexity", "bleu", "chrf", "ter") and "_stderr," in key:
            # lm-eval bootstraps these corpus metrics' stderrs, and llmassay with its own resamples
            assert isinstance(want, float) and isinstance(entry[key], float)
        elif isinstance(want, float):
            assert entry[key] == pytest.approx(want, rel=1e-9), key
        else:
            assert entry[key] == want, key  # names, counts and "N/A"
    [samples_file] = folder.glob(f"samples_{task}_*.jsonl")
    lines = [json.loads(x) for x in samples_file.read_text().splitlines()]
    assert all(list(line)[-1] == "llmassay" and "doc" in line for line in lines)
    assert [{k: v for k, v in line.items() if k not in ("doc", "llmassay")} for line in lines] == ref["samples"]


def test_task_code_missing_a_package_names_it_and_the_extra(tmp_path, scripted, capsys, monkeypatch):
    """truthfulqa's utils.py imports rouge_score: without it, one line naming the package and
    the `lmeval` extra that installs it, never a traceback."""
    from llmassay.tasks import lmeval_yaml

    monkeypatch.setattr(lmeval_yaml, "_MODULES", {})  # import the task's code afresh
    monkeypatch.setitem(sys.modules, "rouge_score", None)  # as if not installed
    assert run(tmp_path, "--tasks", "truthfulqa_mc2", "--trust-task-code") != 0
    [line] = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert line.endswith("truthfulqa/utils.py: task code failed to import: needs the package 'rouge-score' "
                         "(module rouge_score): pip install 'llmassay[lmeval]'")
    assert lmeval_yaml.missing_package("sklearn.metrics") == (
        "needs the package 'scikit-learn' (module sklearn), which the lmeval extra does not install: "
        "pip install scikit-learn")


def test_the_lmeval_extra_installs_what_lm_eval_task_code_imports():
    """LMEVAL_EXTRA (the error's advice) and pyproject's `lmeval` extra name the same packages."""
    from llmassay.tasks.lmeval_yaml import LMEVAL_EXTRA

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pyproject = tomllib.loads((ROOT.parents[2] / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["lmeval"]
    assert sorted(re.split(r"[<>=!~\[ ;]", req)[0] for req in extra) == sorted(LMEVAL_EXTRA.values())
