"""lm-eval 0.4.13's own task configs, byte for byte, give lm-eval's prompts and metrics.

tests/data/lm_eval/tasks/ holds configs copied from the lm-eval 0.4.13 wheel (includes and
`!function` helpers too); tests/data/lm_eval/data/ their local data
(scripts/build_lm_eval_testdata.py); reference.json what lm-eval's own evaluator built and
scored on them with the scripted model of scripts/lm_eval_fake.py
(scripts/lm_eval_reference.py). The same scripted model answers llmassay here, so equal
prompts and equal metrics mean the task layers agree.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import re
import sys
import warnings
from pathlib import Path

import pytest

from fakes import ScriptedBackend, prompt_of
from llmassay.engine.engine import Engine
from llmassay.engine.rolling import rolling_windows
from llmassay.probes.accuracy import AccuracyProbe
from llmassay.probes.base import ProbeConfig
from llmassay.tasks.loader import TaskError, load_task
from llmassay.types import LlmassayError, LoglikelihoodResult

ROOT = Path(__file__).parent / "data" / "lm_eval"
REFERENCE = json.loads((ROOT / "reference.json").read_text(encoding="utf-8"))
FILES = {
    "arc_easy": "arc/arc_easy.yaml", "arc_challenge": "arc/arc_challenge.yaml", "piqa": "piqa/piqa.yaml",
    "boolq": "super_glue/boolq/default.yaml", "sciq": "sciq/sciq.yaml", "openbookqa": "openbookqa/openbookqa.yaml",
    "hellaswag": "hellaswag/hellaswag.yaml", "mmlu_anatomy": "mmlu/default/mmlu_anatomy.yaml",
    "mmlu_astronomy": "mmlu/default/mmlu_astronomy.yaml", "rte": "glue/rte/default.yaml", "cola": "glue/cola/default.yaml", "winogrande": "winogrande/default.yaml",
    "lambada_openai": "lambada/lambada_openai.yaml", "galician_bench_flores_en-gl": "galician_bench/flores_gl/flores_en-gl.yaml",
    "agieval_math": "agieval/math.yaml", "agieval_aqua_rat": "agieval/aqua-rat.yaml",
    "nq_open": "nq_open/nq_open.yaml", "triviaqa": "triviaqa/default.yaml", "gsm8k": "gsm8k/gsm8k.yaml",
    "wikitext": "wikitext/wikitext.yaml", "pile_10k": "pile_10k/pile_10k.yaml", "arc_easy_mi": "arc/arc_easy_mi.yaml",
    "mmlu_flan_cot_zeroshot_anatomy": "mmlu/flan_cot_zeroshot/mmlu_anatomy.yaml",
    "afriqa_hau_prompt_2": "afrobench/afriqa/prompt_2/afriqa_hau.yaml",
    "gsm8k_cot": "gsm8k/gsm8k-cot.yaml", "gsm8k_cot_self_consistency": "gsm8k/gsm8k-cot-self-consistency.yaml",
    "arc_challenge_llama": "llama3/instruct/arc_challenge/arc_challenge_llama.yaml",
    "truthfulqa_mc2": "truthfulqa/truthfulqa_mc2.yaml",
}


def _fake_model():
    sys.path.insert(0, str(ROOT.parents[2] / "scripts"))  # the fake translates with the data builder's lexicon
    spec = importlib.util.spec_from_file_location("lm_eval_fake", ROOT.parents[2] / "scripts" / "lm_eval_fake.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAKE = _fake_model()


class Backend(ScriptedBackend):
    """The scripted model of scripts/lm_eval_fake.py, greedy flags included; a sampled
    request's seed numbers the repeat (the k-th of a task's `repeats` has seed k)."""

    def __init__(self) -> None:
        super().__init__(FAKE.score, lambda req: FAKE.answer(prompt_of(req), req.seed if req.temperature > 0 else 0))

    def loglikelihood(self, reqs):
        return [dataclasses.replace(r, is_greedy=FAKE.greedy(q.context, q.continuation))
                for q, r in zip(reqs, super().loglikelihood(reqs))]

    def rolling_tokens(self, text):
        return FAKE.rolling_tokens(text)

    def loglikelihood_tokens(self, reqs):
        return [LoglikelihoodResult(FAKE.score_tokens(r.context, r.continuation), False, len(r.continuation))
                for r in reqs]


def load(name: str, shots: int | None = None, **kwargs):
    kwargs = {"data_dir": ROOT / "data", "trust_task_code": True, "lm_eval_fewshot": True, **kwargs}
    return load_task(str(ROOT / "tasks" / FILES[name]), num_fewshot=shots, **kwargs)


def test_the_configs_are_lm_eval_s_own_files():
    """Byte for byte: the wheel's files, not retyped ones (sizes pinned from lm-eval 0.4.13)."""
    assert (ROOT / "tasks" / "arc" / "arc_challenge.yaml").read_text() == (
        "include: arc_easy.yaml\ntask: arc_challenge\ndataset_name: ARC-Challenge\n"
    )
    assert len(FILES) >= 27


@pytest.mark.parametrize("run", sorted(REFERENCE["runs"]))
def test_prompts_equal_lm_eval_s(run):
    ref = REFERENCE["runs"][run]
    task = load(ref["task"], ref["num_fewshot"])
    assert task.num_fewshot == ref["n_shot"]
    if task.continuations:  # winogrande: one context per choice, one continuation after each
        assert [[s.prompt + c for c in s.choices] for s in task.samples] == ref["contexts"]
        assert [[task.target_delimiter + task.continuations[s.id]] * 2 for s in task.samples] == ref["continuations"]
        return
    if task.output_type == "loglikelihood_rolling":  # lm-eval's only argument: the document's text
        assert [s.target for s in task.samples] == ref["prompts"]
        return
    assert [s.prompt for s in task.samples] == ref["prompts"]
    if task.output_type == "multiple_choice":
        continuations = [[task.target_delimiter + c for c in s.choices] for s in task.samples]
        if "acc_mutual_info" in task.metrics:  # then each choice again after an empty context
            continuations = [c + c for c in continuations]
            assert [ctx[len(ctx) // 2:] for ctx in ref["contexts"]] == [[""] * len(s.choices) for s in task.samples]
        assert continuations == ref["continuations"]


@pytest.mark.parametrize("run", sorted(REFERENCE["runs"]))
def test_metrics_equal_lm_eval_s(run):
    ref = REFERENCE["runs"][run]
    task = load(ref["task"], ref["num_fewshot"])
    backend = Backend()
    probe, cfg = AccuracyProbe(), ProbeConfig(temperature=0.2 if task.repeats > 1 else 0.0)  # repeats: sampled
    opts = probe.options({})
    if task.output_type == "multiple_choice":
        task = task.with_metrics([m.split(",")[0] for m in ref["metrics"] if "," in m])
    rows = probe.evaluate(task, task.samples, Engine(backend), opts, cfg)
    analysis = probe.analyse(task, rows, opts, cfg)
    ours = {(k if "," in k else f"{k},none"): m.value for k, m in analysis.metrics.items()}
    theirs = {k: v for k, v in ref["metrics"].items() if "," in k}
    assert ours == pytest.approx(theirs)
    if task.output_type == "generate_until":  # each filter's answer, as lm-eval's filtered_resps
        names = ref["filters"]
        for row, filtered in zip(rows, ref["filtered_resps"]):
            assert [row[f"filtered_resps,{n}"] for n in names] == filtered


def test_lm_eval_scores_differ_from_what_a_naive_loader_gives():
    """The planted differences matter: without list targets nq_open's exact match falls, and
    gsm8k's two filters disagree on the same generations."""
    ref = REFERENCE["runs"]["nq_open@2"]["metrics"]["exact_match,remove_whitespace"]
    task = load("nq_open", 2)
    single = {**task.__dict__, "targets": {}}
    backend = ScriptedBackend(FAKE.score, lambda req: FAKE.answer(prompt_of(req)))
    probe = AccuracyProbe()
    rows = probe.evaluate(type(task)(**single), task.samples, Engine(backend), probe.options({}), ProbeConfig())
    assert sum(r["exact_match,remove_whitespace"] for r in rows) / len(rows) < ref
    gsm = REFERENCE["runs"]["gsm8k@None"]["metrics"]
    assert gsm["exact_match,strict-match"] != gsm["exact_match,flexible-extract"]


def test_include_is_resolved_relative_to_the_including_file_and_local_keys_win():
    easy, challenge = load("arc_easy"), load("arc_challenge")
    assert challenge.name == "arc_challenge" and easy.name == "arc_easy"
    assert challenge.config["doc_to_text"] == easy.config["doc_to_text"]  # from arc_easy.yaml
    assert challenge.config["dataset_name"] == "ARC-Challenge"  # its own key wins
    assert [s.doc["id"] for s in challenge.samples][0].startswith("ARC-Challenge-test")
    anatomy = load("mmlu_anatomy")  # includes _default_template_yaml (no .yaml suffix)
    assert anatomy.config["fewshot_config"] == {"sampler": "first_n"}


def test_splits_are_chosen_as_lm_eval_chooses_them():
    """test_split, else validation_split (piqa and boolq are validation-only: not train)."""
    assert all(s.doc["id"].startswith("ARC-Easy-test-") for s in load("arc_easy").samples)
    piqa = load("piqa")
    validation = (ROOT / "data/baber/piqa/default/validation.jsonl").read_text().splitlines()
    assert [s.doc for s in piqa.samples] == [json.loads(line) for line in validation]


def test_five_shot_mmlu_draws_the_first_dev_questions_from_the_few_shot_split():
    task = load("mmlu_anatomy", 5)
    dev = [json.loads(x) for x in (ROOT / "data/cais/mmlu/anatomy/dev.jsonl").read_text().splitlines()]
    first = task.samples[0].prompt
    positions = [first.index(d["question"].strip()) for d in dev]
    assert positions == sorted(positions)  # the dev questions, in file order, every one
    assert all(s.prompt.split("Answer:")[:5] == first.split("Answer:")[:5] for s in task.samples)


def test_function_tags_need_trust_task_code():
    with pytest.raises(TaskError, match=r"hellaswag\.yaml:\d+: field 'process_docs': '!function utils\.process_docs' "
                                        r"runs Python from .*; pass --trust-task-code"):
        load("hellaswag", trust_task_code=False)
    assert load("hellaswag").samples[0].choices[0] == " mercury."  # utils.process_docs ran


@pytest.mark.parametrize("key", sorted(REFERENCE["rolling_windows"]))
def test_rolling_windows_are_lm_eval_s(key):
    """engine/rolling.py cuts a document into lm-eval's own disjoint windows (stored from
    lm_eval.utils.get_rolling_token_windows + make_disjoint_window)."""
    n, max_length = map(int, key.split(","))
    ours = [[list(w.context), list(w.continuation)] for w in rolling_windows(list(range(n)), -1, max_length)]
    assert ours == REFERENCE["rolling_windows"][key]
    assert [t for w in ours for t in w[1]] == list(range(n))  # every token predicted once


def test_rolling_perplexity_recovers_a_planted_per_byte_loss():
    """A backend that gives every token log P = -0.5 (per byte): bits_per_byte is 0.5/ln 2
    and byte_perplexity e^0.5 whatever the windows; word_perplexity weighs by words."""

    class Flat(Backend):
        def loglikelihood_tokens(self, reqs):
            return [LoglikelihoodResult(-0.5 * len(r.continuation), False, len(r.continuation)) for r in reqs]

    task = load("pile_10k")
    probe = AccuracyProbe()
    rows = probe.evaluate(task, task.samples, Engine(Flat()), probe.options({}), ProbeConfig())
    metrics = probe.analyse(task, rows, probe.options({}), ProbeConfig()).metrics
    n_bytes = sum(len(str(s.target).encode()) for s in task.samples)
    n_words = sum(len(re.split(r"\s+", str(s.target))) for s in task.samples)
    assert metrics["bits_per_byte"].value == pytest.approx(0.5 / math.log(2))
    assert metrics["byte_perplexity"].value == pytest.approx(math.exp(0.5))
    assert metrics["word_perplexity"].value == pytest.approx(math.exp(0.5 * n_bytes / n_words))
    assert all(r["n_windows"] == -(-r["n_tokens"] // FAKE.ROLLING_WINDOW) for r in rows)
    m = metrics["bits_per_byte"]
    assert m.n == len(task.samples) and m.ci_low <= m.value <= m.ci_high


def test_rolling_needs_a_backend_that_scores_tokens():
    task = load("pile_10k")
    with pytest.raises(LlmassayError, match="backend 'test/scripted' cannot score token windows"):
        AccuracyProbe().evaluate(task, task.samples, Engine(ScriptedBackend(FAKE.score, str)),
                                 AccuracyProbe().options({}), ProbeConfig())


def test_unknown_keys_are_named_in_a_warning(tmp_path):
    text = (ROOT / "tasks/arc/arc_easy.yaml").read_text() + "doc_to_image: img\nunsafe_code: false\n"
    (tmp_path / "arc_x.yaml").write_text(text)
    with pytest.warns(UserWarning, match=r"arc_x\.yaml:\d+: key 'unsafe_code' is not supported and is ignored"):
        with pytest.raises(TaskError, match="field 'doc_to_image': is not supported, and ignoring it would change"):
            load_task(str(tmp_path / "arc_x.yaml"), data_dir=ROOT / "data")
    (tmp_path / "arc_y.yaml").write_text(text.replace("doc_to_image: img\n", ""))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        load_task(str(tmp_path / "arc_y.yaml"), data_dir=ROOT / "data")
    assert [str(w.message).split(": ", 1)[1] for w in said] == ["key 'unsafe_code' is not supported and is ignored"]


def test_include_errors_name_include(tmp_path):
    (tmp_path / "a.yaml").write_text("include: missing.yaml\ntask: a\n")
    with pytest.raises(TaskError, match=r"a\.yaml:1: field 'include': 'missing\.yaml' not found"):
        load_task(str(tmp_path / "a.yaml"))
    (tmp_path / "b.yaml").write_text("include: c.yaml\ntask: b\n")
    (tmp_path / "c.yaml").write_text("include: b.yaml\n")
    with pytest.raises(TaskError, match=r"field 'include': 'b\.yaml' includes itself"):
        load_task(str(tmp_path / "b.yaml"))
    (tmp_path / "d.yaml").write_text("task: d\ndataset_path: json\n")
    with pytest.raises(TaskError, match=r"missing required field 'doc_to_text' \(in this file and its 'include:' files\)"):
        load_task(str(tmp_path / "d.yaml"))


def test_data_files_are_found_beside_the_yaml_then_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "d.jsonl").write_text('{"q": "2+2", "a": "4"}\n')
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "t.yaml").write_text(
        "task: t\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\ndoc_to_text: '{{q}}='\ndoc_to_target: a\n")
    monkeypatch.chdir(tmp_path / "cwd")
    task = load_task(str(tmp_path / "t" / "t.yaml"))
    assert task.output_type == "generate_until"  # lm-eval's default when output_type is omitted
    assert task.samples[0].prompt == "2+2=" and task.samples[0].target == "4"


def test_bundled_mmlu_few_shot_uses_the_subject_s_own_dev_questions_first():
    """#25 item 6: 'about abstract algebra' prompts get abstract algebra examples, the
    first in file order (lm-eval's MMLU), never the item itself; 5 shots leave 4 (said)."""
    with pytest.warns(UserWarning, match=r"mmlu_sample: 5 shots requested, but 281 items have only 2/3/4 other"):
        task = load_task("mmlu_sample", num_fewshot=5)
    by_id = {s.id: s for s in task.samples}
    subject = [s for s in load_task("mmlu_sample").samples if s.doc["subject"] == "anatomy"]  # zero-shot
    head = "The following are multiple choice questions (with answers) about anatomy.\n\n"
    for s in subject:
        shots = "".join(f"{o.prompt[len(head):]} {'ABCD'[o.target]}\n\n" for o in subject if o is not s)
        assert by_id[s.id].prompt == head + shots + s.prompt[len(head):]
    three = load_task("mmlu_sample", num_fewshot=3)
    first = next(s for s in three.samples if s.id == "virology_0")
    assert first.prompt.count("Answer:") == 4 and "virology_1" not in first.prompt
    questions = [s.doc["question"].strip() for s in three.samples if s.doc["subject"] == "virology"]
    assert [q in first.prompt for q in questions] == [True, True, True, True, False]


def test_f1_and_mcc_are_over_the_corpus_with_a_bootstrap_interval():
    from llmassay.tasks.corpus_metrics import corpus_metric

    rows = [{"target": t, "pred": p} for t, p in [(0, 0), (1, 1), (0, 1), (1, 1)] * 10]
    mcc, f1 = corpus_metric("mcc", rows), corpus_metric("f1", rows)
    assert mcc.value == pytest.approx(2 / 12 ** 0.5) and f1.value == pytest.approx(0.8)
    assert mcc.ci_low < mcc.value < mcc.ci_high and mcc.n == 40 and mcc.method == "bootstrap"
    sklearn = pytest.importorskip("sklearn.metrics")  # lm-eval's formulas: the same numbers
    import numpy as np

    from llmassay.tasks.corpus_metrics import f1 as our_f1, mcc as our_mcc

    rng = np.random.default_rng(0)
    for k in (2, 3, 4):
        pairs = rng.integers(0, k, size=(60, 2))
        assert our_mcc(pairs, k) == pytest.approx(sklearn.matthews_corrcoef(pairs[:, 0], pairs[:, 1]))
    binary = rng.integers(0, 2, size=(60, 2))
    assert our_f1(binary) == pytest.approx(sklearn.f1_score(binary[:, 0], binary[:, 1]))


def test_group_aggregates_weigh_tasks_as_lm_eval_does():
    """aggregate_metric_list: weight_by_size true = the item-weighted mean, false = the mean
    of task means, tasks without the metric left out (planted: 1 of 2 vs 1 of 4 right)."""
    from llmassay.tasks.groups import AggregateSpec, GroupSpec, aggregate_group

    metrics = {"a": {"acc,none": 0.5, "acc_norm,none": 1.0}, "b": {"acc,none": 0.25}}
    sizes = {"a": 2, "b": 4}
    group = GroupSpec("g", ["a", "b"], [AggregateSpec("acc", None, True), AggregateSpec("acc_norm", ("none",), False)])
    assert aggregate_group(group, ["a", "b"], metrics, sizes) == {"acc,none": pytest.approx(2 / 6), "acc_norm,none": 1.0}
    group.aggregate = [AggregateSpec("acc", ("none",), False)]
    assert aggregate_group(group, ["a", "b"], metrics, sizes) == {"acc,none": pytest.approx(0.375)}


def test_group_intervals_are_normal_around_lm_eval_s_group_stderr():
    """Planted: task a 8 of 10 right, task b 1 of 4 right (their Wilson metrics). Weighted by
    size: value 9/14, stderr pooled by hand = sqrt(((9·s_a²·10 + 3·s_b²·4) / 12) / 14) = 0.11827 with
    s² = p(1−p)/(n−1); unweighted: 0.525 ± 1.96·sqrt(s_a² + s_b²)/2. An interval that would
    leave [0, 1] is clipped; a member without a stderr leaves the interval NaN, said."""
    import math

    from llmassay.metrics import proportion
    from llmassay.tasks.groups import AggregateSpec, GroupSpec, group_metrics

    a, b = proportion([1] * 8 + [0] * 2), proportion([1] + [0] * 3)
    metrics = {"a": {"acc,none": a.as_dict()}, "b": {"acc,none": b.as_dict()}}
    sizes = {"a": 10, "b": 4}
    var_a, var_b = 0.8 * 0.2 / 9, 0.25 * 0.75 / 3
    pooled = math.sqrt(((9 * var_a * 10 + 3 * var_b * 4) / 12) / 14)
    weighted = group_metrics(GroupSpec("g", ["a", "b"], [AggregateSpec("acc", None, True)]), ["a", "b"], metrics, sizes)
    got = weighted["acc,none"]
    assert (got.value, got.n, got.method) == (pytest.approx(9 / 14), 14, "normal, lm-eval pooled stderr")
    assert got.stderr == pytest.approx(pooled) and pooled == pytest.approx(0.11827, abs=1e-5)
    assert (got.ci_low, got.ci_high) == (pytest.approx(9 / 14 - 1.959964 * pooled), pytest.approx(9 / 14 + 1.959964 * pooled))
    plain = group_metrics(GroupSpec("g", ["a", "b"], [AggregateSpec("acc", None, False)]), ["a", "b"], metrics, sizes)
    se = math.sqrt(var_a + var_b) / 2
    assert plain["acc,none"].stderr == pytest.approx(se)
    assert (plain["acc,none"].ci_low, plain["acc,none"].ci_high) == (pytest.approx(0.525 - 1.959964 * se), pytest.approx(0.525 + 1.959964 * se))
    high = {"a": {"acc,none": proportion([1] * 9 + [0]).as_dict()}, "b": {"acc,none": proportion([1] * 4).as_dict()}}
    clipped = group_metrics(GroupSpec("g", ["a", "b"], [AggregateSpec("acc", None, False)]), ["a", "b"], high, sizes)
    assert clipped["acc,none"].ci_high == 1.0 and clipped["acc,none"].ci_low < 0.95
    lone = {"a": {"acc,none": proportion([1]).as_dict()}, "b": {"acc,none": b.as_dict()}}
    undefined = group_metrics(GroupSpec("g", ["a", "b"], [AggregateSpec("acc", None, True)]), ["a", "b"], lone, sizes)
    assert math.isnan(undefined["acc,none"].ci_low) and "no stderr" in undefined["acc,none"].method


def test_group_aggregate_errors_name_the_group(tmp_path):
    from llmassay.tasks.registry import TaskIndex

    (tmp_path / "g.yaml").write_text("group: g\ntask: [arc_easy]\naggregate_metric_list:\n  - metric: acc\n"
                                     "    aggregation: median\n")
    index = TaskIndex.scan([tmp_path])  # a folder with one bad group still scans
    with pytest.raises(LlmassayError, match=r"g\.yaml: group 'g': aggregation 'median' of 'acc' is not supported"):
        index.expand("g")
