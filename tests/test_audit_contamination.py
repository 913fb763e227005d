"""Contamination audit against planted truth: a synthetic task and corpus generated here,
with verbatim leaks, case/punctuation-changed leaks, 50 %-overlap passages and clean items."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("datasketch")

from llmassay.audit import CorpusSpec, audit_contamination, rescore  # noqa: E402
from llmassay.audit.contamination import AUTO_MAX_N, AUTO_MIN_N, Item, auto_ngram  # noqa: E402
from llmassay.cli import main  # noqa: E402
from llmassay.engine.store import RunStore  # noqa: E402
from llmassay.types import LlmassayError  # noqa: E402

VOCAB = [f"{a}{b}{c}" for a in "bcdfgklmnprst" for b in "aeiou" for c in "bdgklmnprstz"]  # 780 pseudo-words


def _sentence(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(VOCAB) for _ in range(n)]


def _noisy(words: list[str], rng: random.Random) -> str:
    """Same words, different case, punctuation and spacing: must normalise back."""
    out = []
    for w in words:
        w = w.upper() if rng.random() < 0.5 else w.capitalize()
        out.append(w + rng.choice(["", ",", ";", " -", "!", "...", "'"]))
    return "  \t".join(out[:3]) + " " + " ".join(out[3:])


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("contam")
    items = []
    for i in range(60):
        items.append(
            {
                "id": f"q{i}",
                "question": " ".join(_sentence(rng, rng.randint(20, 40))),
                "choices": [" ".join(_sentence(rng, 3)) for _ in range(4)],
                "answer": rng.randrange(4),
            }
        )
    task = root / "synth.jsonl"
    task.write_text("".join(json.dumps(r) + "\n" for r in items))
    kinds = {}
    docs = []
    for i, item in enumerate(items):
        q = item["question"].split()
        label = item["choices"][item["answer"]]
        prompt = f"Question: {item['question']}\nAnswer:"
        filler = lambda: " ".join(_sentence(rng, 40))  # noqa: E731
        if i < 10:  # verbatim: the rendered prompt and its answer
            kinds[item["id"]] = "verbatim"
            docs.append(f"{filler()} {prompt} {label} {filler()}")
        elif i < 20:  # case, punctuation and whitespace changed
            kinds[item["id"]] = "noisy"
            docs.append(f"{filler()} {_noisy(['question', *q, 'answer', *label.split()], rng)} {filler()}")
        elif i < 25:  # the input without its label
            kinds[item["id"]] = "input_only"
            docs.append(f"{filler()} {prompt} {filler()}")
        elif i < 30:  # 50 % overlap as one contiguous half (>= 13 words): dirty by N-grams
            kinds[item["id"]] = "half_contiguous"
            docs.append(f"{filler()} {' '.join(q[: len(q) // 2 + 1])} {filler()}")
        elif i < 35:  # 50 % overlap scattered (every other word replaced): no 13-gram survives
            kinds[item["id"]] = "half_scattered"
            docs.append(" ".join(w if j % 2 == 0 else "zzz" for j, w in enumerate(q)))
        else:
            kinds[item["id"]] = "clean"
    for _ in range(200):
        docs.append(" ".join(_sentence(rng, rng.randint(30, 200))))
    rng.shuffle(docs)
    corpus = root / "corpus.jsonl"
    lines = [json.dumps({"text": d}) for d in docs]
    lines.insert(5, "{not json")
    lines.insert(9, json.dumps({"body": "no text field"}))
    corpus.write_text("\n".join(lines) + "\n")
    audit = audit_contamination(CorpusSpec((str(corpus),)), [str(task)], ngram=13)
    return {"root": root, "task": task, "corpus": corpus, "kinds": kinds, "audit": audit, "items": items}


def _per_item(planted: dict) -> dict:
    (result,) = planted["audit"].tasks.values()
    return {i.id: i for i in result.per_item}


def test_recall_on_verbatim_and_noisy_leaks_is_one(planted: dict) -> None:
    per_item = _per_item(planted)
    leaked = [i for i, k in planted["kinds"].items() if k in ("verbatim", "noisy", "input_only")]
    assert len(leaked) == 25
    assert all(per_item[i].dirty for i in leaked)
    assert all(per_item[i].input_match_docs for i in leaked)  # Dodge et al.: normalised exact input


def test_precision_on_clean_items_is_one(planted: dict) -> None:
    per_item = _per_item(planted)
    clean = [i for i, k in planted["kinds"].items() if k == "clean"]
    assert len(clean) == 25
    assert not any(per_item[i].dirty for i in clean)
    assert set(planted["audit"].clean_ids()[planted["task"].stem]) == set(clean) | {
        i for i, k in planted["kinds"].items() if k == "half_scattered"
    }


def test_half_overlap_dirty_only_when_a_full_ngram_survives(planted: dict) -> None:
    per_item = _per_item(planted)
    for item_id, kind in planted["kinds"].items():
        if kind == "half_contiguous":
            assert per_item[item_id].dirty and not per_item[item_id].input_match_docs
        if kind == "half_scattered":
            assert not per_item[item_id].dirty


def test_input_and_label_separated_from_input_only(planted: dict) -> None:
    per_item = _per_item(planted)
    for item_id, kind in planted["kinds"].items():
        if kind in ("verbatim", "noisy"):
            assert per_item[item_id].input_and_label_match_docs
        if kind == "input_only":
            assert per_item[item_id].input_match_docs and not per_item[item_id].input_and_label_match_docs


def test_counts_overlap_details_and_settings(planted: dict) -> None:
    audit = planted["audit"]
    (result,) = audit.tasks.values()
    assert result.items == 60 and result.dirty == 30 and result.fraction_dirty == pytest.approx(0.5)
    assert result.input_contaminated == 25 and result.input_and_label_contaminated == 20
    verbatim = next(i for i, k in planted["kinds"].items() if k == "verbatim")
    item = _per_item(planted)[verbatim]
    overlap = item.overlaps[0]
    assert overlap.doc_id.startswith(str(planted["corpus"]) + ":") and len(overlap.ngram.split()) == 13
    assert overlap.word_offset == 41  # after the 40 filler words and the template's "Question:"
    report = audit.report()
    assert report["settings"]["ngram"] == {"synth": 13}
    assert report["settings"]["item_text"]["synth"].startswith("document field 'question'")
    assert report["tasks"]["synth"]["item_text"] == report["settings"]["item_text"]["synth"]
    assert report["settings"]["normalisation"]["lowercase"] is True
    assert report["stream"]["skipped_lines"] == 2
    assert any(":6: invalid JSON" in e for e in report["stream"]["skipped_examples"])
    assert any(":10: field 'text' is missing" in e for e in report["stream"]["skipped_examples"])


def test_auto_ngram_follows_gpt3_appendix_c() -> None:
    def items(lengths: list[int]) -> list[Item]:
        return [Item("t", str(i), tuple("w" * n), ()) for i, n in enumerate(lengths)]

    assert auto_ngram(items([10] * 100)) == 10
    assert auto_ngram(items([3] * 100)) == AUTO_MIN_N
    assert auto_ngram(items([50] * 100)) == AUTO_MAX_N
    assert auto_ngram(items([9] * 6 + [40] * 94)) == 9  # 5th percentile (numpy linear interpolation)


def test_short_item_is_dirty_only_when_whole(tmp_path: Path) -> None:
    task = tmp_path / "short.jsonl"
    task.write_text(
        json.dumps({"id": "s", "input": "Calculate 17 + 25.", "target": "42"})
        + "\n"
        + json.dumps({"id": "t", "input": "Calculate 99 + 1.", "target": "100"})
        + "\n"
    )
    corpus = tmp_path / "c.txt"
    corpus.write_text("we were asked: CALCULATE 17 + 25 and said 42\ncalculate 99 + 2\n")  # '+' is a symbol, kept
    audit = audit_contamination(CorpusSpec((str(corpus),)), [str(task)], ngram="auto")
    per_item = {i.id: i for i in audit.tasks["short"].per_item}
    assert audit.tasks["short"].n == AUTO_MIN_N
    assert per_item["s"].dirty and per_item["s"].input_and_label_match_docs == [f"{corpus}:1"]
    assert not per_item["t"].dirty


def test_listing_all_options_does_not_reveal_the_label(tmp_path: Path) -> None:
    """Multiple choice: a page with the question and every option is input contamination;
    only a page that singles out the gold option is input-and-label."""
    task = tmp_path / "mc.jsonl"
    rows = [
        {
            "id": "a",
            "question": "Which planet is known as the red planet?",
            "choices": ["Venus", "Mars", "Jupiter"],
            "answer": 1,
        },
        {
            "id": "b",
            "question": "Which gas do plants absorb from the air?",
            "choices": ["Oxygen", "Carbon dioxide", "Helium"],
            "answer": 1,
        },
    ]
    task.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = tmp_path / "c.txt"
    corpus.write_text(
        "Quiz: WHICH PLANET IS KNOWN AS THE RED PLANET? (a) Venus (b) Mars (c) Jupiter\n"
        "Quiz: which gas do plants absorb from the air? (a) oxygen (b) carbon dioxide (c) helium. Answer: carbon dioxide\n"
    )
    audit = audit_contamination(CorpusSpec((str(corpus),)), [str(task)], ngram=8, item_field="question")
    per_item = {i.id: i for i in audit.tasks["mc"].per_item}
    assert per_item["a"].input_match_docs == [f"{corpus}:1"] and not per_item["a"].input_and_label_match_docs
    assert per_item["b"].input_and_label_match_docs == [f"{corpus}:2"]


def test_bad_ngram_and_missing_task(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "x"}\n')
    with pytest.raises(LlmassayError, match="--ngram"):
        audit_contamination(CorpusSpec((str(corpus),)), ["mmlu_sample"], ngram=0)
    assert (
        main(
            [
                "audit",
                "contamination",
                "--corpus",
                str(corpus),
                "--tasks",
                "mmlu_sample",
                "--ngram",
                "x",
                "--output-dir",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )


def test_cli_writes_report_and_clean_ids_then_rescore(
    planted: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "audit"
    assert (
        main(
            [
                "audit",
                "contamination",
                "--corpus",
                str(planted["corpus"]),
                "--tasks",
                str(planted["task"]),
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads((out / "contamination.json").read_text())
    assert report["tasks"]["synth"]["dirty"] == 30
    clean_ids = json.loads((out / "clean_ids.json").read_text())
    assert len(clean_ids["synth"]) == 30
    assert "synth" in capsys.readouterr().out

    # A run in RunStore's own format: the model is right on every clean item, wrong on dirty ones but two.
    store = RunStore(tmp_path / "run")
    dirty = [i["id"] for i in planted["items"] if i["id"] not in clean_ids["synth"]]
    rows = [
        {"probe": "accuracy", "id": i["id"], "acc": i["id"] not in dirty or i["id"] in dirty[:2], "acc_norm": True}
        for i in planted["items"]
    ]
    store.write_samples("synth", rows)
    store.write_results(
        {"results": {"synth": {"accuracy": {"acc": {"value": 32 / 60, "ci_low": 0.4, "ci_high": 0.66, "n": 60}}}}}
    )
    scores = {s.metric: s for s in rescore(tmp_path / "run", out / "clean_ids.json")["synth"]}
    acc = scores["accuracy/acc"]
    assert (acc.clean.value, acc.clean.n) == (1.0, 30)
    assert (acc.dirty.value, acc.dirty.n) == (pytest.approx(2 / 30), 30)
    assert acc.all.value == pytest.approx(32 / 60)
    assert 0 < acc.dirty.ci_low < acc.dirty.value < acc.dirty.ci_high < acc.clean.ci_low  # Wilson intervals
    assert (
        main(
            [
                "rescore",
                str(tmp_path / "run"),
                "--clean-ids",
                str(out / "clean_ids.json"),
                "--output",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "r.json").read_text())["synth"][0]["clean"]["n"] == 30


def test_rescore_errors_are_one_line(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("a\nb\n")
    with pytest.raises(LlmassayError, match="no results_"):
        rescore(tmp_path, ids)
    RunStore(tmp_path / "run").write_results({"results": {"other": {}}})
    with pytest.raises(LlmassayError, match="no task of the run"):
        rescore(tmp_path / "run", tmp_path / "ids.txt")
    with pytest.raises(LlmassayError, match="cannot read"):
        rescore(tmp_path, tmp_path / "missing.json")


def _mmlu_like_task(tmp_path: Path) -> Path:
    """A multiple-choice YAML task with MMLU's template; one short question (6 words)."""
    rows = [
        {"id": "short", "question": "What is the capital of Peru?", "choices": ["Lima", "Quito", "Bogota", "La Paz"],
         "answer": 0},
        {"id": "long", "question": "Which organelle of the eukaryotic cell produces most of the chemical energy "
         "needed to power the cell's biochemical reactions?", "choices": ["Ribosome", "Mitochondrion", "Nucleus",
         "Golgi apparatus"], "answer": 1},
    ]
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = tmp_path / "mc.yaml"
    task.write_text(
        "task: mc\ndataset_path: json\ndataset_kwargs:\n  data_files: mc.jsonl\ntest_split: train\n"
        "output_type: multiple_choice\n"
        'description: "The following are multiple choice questions (with answers).\\n\\n"\n'
        'doc_to_text: "{{question.strip()}}\\nA. {{choices[0]}}\\nB. {{choices[1]}}\\nC. {{choices[2]}}\\n'
        'D. {{choices[3]}}\\nAnswer:"\n'
        'doc_to_choice: ["A", "B", "C", "D"]\ndoc_to_target: answer\n'
    )
    return task


def test_default_matches_the_question_not_the_template(tmp_path: Path) -> None:
    """A leak laid out differently from our template (a quiz page) is found by exact match
    on the question; matching the rendered prompt, template words included, misses it."""
    task = _mmlu_like_task(tmp_path)
    corpus = tmp_path / "c.txt"
    corpus.write_text(
        "Quiz 3. What is the capital of Peru? Options: Quito, Lima, Bogota. The answer is Lima, of course.\n"
        "Biology: which organelle of the eukaryotic cell produces most of the chemical energy needed to power "
        "the cell's biochemical reactions? (mitochondrion)\n"
        "an unrelated line about Peru and its capital\n"
    )
    spec = CorpusSpec((str(corpus),))
    by_question = audit_contamination(spec, [str(task)], ngram="auto")
    by_prompt = audit_contamination(spec, [str(task)], ngram="auto", item_text="prompt")
    q, p = by_question.tasks["mc"], by_prompt.tasks["mc"]
    assert q.item_text.startswith("document field 'question'") and p.item_text.startswith("zero-shot prompt")
    assert q.n == AUTO_MIN_N  # the questions have 6 and 20 words; the prompts 16 and 30
    assert p.n == 13
    per_q = {i.id: i for i in q.per_item}
    assert per_q["short"].input_match_docs == [f"{corpus}:1"] and per_q["short"].input_and_label_match_docs
    assert per_q["long"].input_match_docs == [f"{corpus}:2"] and per_q["long"].input_and_label_match_docs
    assert q.dirty == 2
    assert p.input_contaminated == 0  # no copy is laid out in our template
    assert not {i.id: i for i in p.per_item}["short"].dirty  # its 13-grams all cross template words


def test_question_field_falls_back_to_the_prompt_and_checks_the_option(tmp_path: Path) -> None:
    from llmassay.audit.contamination import item_text_source, question_field
    from llmassay.tasks.loader import load_task

    mmlu = load_task("mmlu_sample", num_fewshot=0)
    arith = load_task("arith_sample", num_fewshot=0)
    assert question_field(mmlu) == "question"
    assert question_field(arith) == "input"  # longer than `expression`, which the prompt also shows
    template = tmp_path / "t.yaml"
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "a", "x": "two words", "y": "4"}) + "\n")
    template.write_text(
        "task: t\ndataset_path: json\ndataset_kwargs:\n  data_files: d.jsonl\ntest_split: train\n"
        'output_type: generate_until\ndoc_to_text: "{{x | upper}}"\ndoc_to_target: y\n'
    )
    upper = load_task(str(template), num_fewshot=0)
    source = item_text_source(upper)
    assert source.field is None and "no document field occurs in every prompt" in source.describe()
    with pytest.raises(LlmassayError, match="--item-text: 'words'"):
        item_text_source(upper, item_text="words")


def test_rescore_of_a_brittleness_run_names_each_variant(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Each printed row names its variant (`brittleness/acc[case_upper]`): rich read the
    "[case_upper]" as a markup tag and dropped it, so every row read `brittleness/acc`."""
    from fakes import RuleBackend, knows_everything, write_mc_task
    from llmassay.evaluation import RunConfig, evaluate

    task = write_mc_task(tmp_path / "task", [4] * 6)
    evaluate(RunConfig(model="test/scripted", tasks=[str(task)], probes=["brittleness"], output_path=str(tmp_path / "run"),
                       use_cache=False, probe_options={"perturbations": "case_upper,labels_paren"}),
             backend=RuleBackend(knows_everything))
    (tmp_path / "clean.txt").write_text("0\n1\n2\n")
    capsys.readouterr()
    assert main(["rescore", str(tmp_path / "run"), "--clean-ids", str(tmp_path / "clean.txt")]) == 0
    printed = capsys.readouterr().out
    metrics = sorted({s.metric for s in rescore(tmp_path / "run", tmp_path / "clean.txt")["mc"]})
    assert "brittleness/acc[case_upper]" in metrics and "brittleness/flip_rate[labels_paren]" in metrics
    assert len(metrics) == len({m.split("/")[1] for m in metrics})  # every name distinct
    rows = [line for line in printed.splitlines() if "brittleness/" in line]
    assert len(rows) == len(metrics)
    for name in metrics:
        assert sum(f" {name} " in line for line in rows) == 1, name
