"""KB distractors for the position probe (`-P position.distractors=kb`): documents about real
countries, drawn by seed, never the gold passage and never holding the answer; a planted
reader of the first N words has its curve recovered with them exactly as with the task's own
distractors, item by item."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes import WindowBackend
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.longctx.distractors import Document, kb_distractors, kb_documents
from llmassay.longctx.needles import found
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.position import INSTRUCTION, PositionProbe
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError

pytest.importorskip("countryinfo")

TASK = load_task("position_sample")
FACTS = {s.doc["passage"]: (s.doc["question"], s.doc["answer"]) for s in TASK.samples}
KB = {d.id: d.text for d in kb_documents()}


def run(tmp_path: Path, backend, limit: int = 40, seed: int = 0, **options):
    cfg = ProbeConfig(seed=seed, options=tuple(sorted(options.items())))
    log = SampleLog(tmp_path / f"log-{len(list(tmp_path.iterdir()))}.jsonl")
    return run_probe(PositionProbe(), TASK.limited(limit), Engine(backend), cfg, log)


def test_kb_documents_are_country_documents_of_a_village_documents_size():
    docs = kb_documents()
    assert len(docs) > 200 and len({d.id for d in docs}) == len(docs)
    assert KB["IE"].startswith("The capital of Ireland is Dublin. Ireland is in Europe.")
    assert "sources disagree" not in " ".join(KB.values())  # one source's value per field
    words = sorted(len(d.text.split()) for d in docs)
    assert 35 <= words[len(words) // 2] <= 60


def test_kb_distractors_never_hold_the_answer_and_the_gold_passage_is_shown_once(tmp_path):
    backend = WindowBackend(FACTS, 100_000)  # reads everything: every answer is found
    result = run(tmp_path, backend, passages=10, distractors="kb", closed_book=False)
    rows = result.samples
    assert all(len(r["distractors"]) == 9 and set(r["distractors"]) <= set(KB) for r in rows)
    for r, s in zip(rows, TASK.samples):
        assert not any(found(KB[c], s.doc["answer"]) for c in r["distractors"])
    for prompt in backend.prompts:  # exactly one village passage per prompt: the gold one
        assert sum(passage in prompt for passage in FACTS) == 1
    assert all(result.metrics[f"accuracy[{p}]"].value == 1.0 for p in range(1, 11))
    assert result.details["distractors"] == "kb"


def test_a_document_holding_the_answer_is_never_drawn():
    pool = [Document("A", "The currency of Atlantis is Euro."), Document("B", "The currency of Bree is Pound."),
            Document("C", "Cathay pays in euro coins."), Document("D", "Dunland is in Europe.")]
    for seed in range(20):
        drawn = kb_distractors(pool, "item", "Euro", 2, seed)
        assert {d.id for d in drawn} == {"B", "D"}  # "Europe" does not hold the whole word "Euro"
    with pytest.raises(LlmassayError, match=r"^-P position\.passages=4: the KB has only 2 documents without the answer"):
        kb_distractors(pool, "item", "Euro", 3, 0)


def test_the_draw_is_fixed_by_the_seed_and_task_distractors_ignore_it(tmp_path):
    backend = WindowBackend(FACTS, 100_000)

    def drawn(seed: int, **options) -> list[list[str]]:
        return [r["distractors"] for r in run(tmp_path, backend, limit=10, seed=seed, passages=5, **options).samples]

    first = drawn(0, distractors="kb")
    assert drawn(0, distractors="kb") == first
    assert sum(a != b for a, b in zip(first, drawn(1, distractors="kb"))) >= 9  # another seed, another draw
    # the task's next items (of the 10 run), whatever the seed
    assert drawn(0) == drawn(1) == [[f"position_{(i + j) % 10}" for j in range(1, 5)] for i in range(10)]


def _in_first_words(row: dict, gold: str, position: int, n: int) -> bool:
    """Planted truth, computed from the documents alone: is the gold passage inside the
    reader's first n words when shown at `position` among the row's distractors?"""
    others = [KB[c] for c in row["distractors"]]
    before = len(INSTRUCTION.split()) + sum(2 + len(t.split()) for t in others[: position - 1])  # "Document [i]:"
    return before + 2 + len(gold.split()) <= n


@pytest.mark.parametrize("n", [120, 260])
def test_a_reader_of_the_first_words_has_its_curve_recovered_with_kb_distractors(tmp_path, n):
    result = run(tmp_path, WindowBackend(FACTS, n, side="first"), passages=8, distractors="kb")
    rows, m = result.samples, result.metrics
    for r, s in zip(rows, TASK.samples):
        expected = {str(p): _in_first_words(r, s.doc["passage"], p, n) for p in range(1, 9)}
        assert r["positions"] == expected
    curve = [m[f"accuracy[{p}]"].value for p in range(1, 9)]
    assert curve[0] == 1.0 and curve[-1] == 0.0
    assert curve == sorted(curve, reverse=True)
    assert 0 < sum(curve) < 8
    assert m["recency_slope"].ci_high < 0  # primacy, with a CI that excludes 0
    assert result.summary.verdict.startswith("primacy")


def test_a_reader_of_the_last_words_shows_recency_with_kb_distractors_too(tmp_path):
    m = run(tmp_path, WindowBackend(FACTS, 150), passages=10, distractors="kb").metrics
    curve = [m[f"accuracy[{p}]"].value for p in range(1, 11)]
    assert curve[:6] == [0.0] * 6 and curve[-1] == 1.0
    assert m["recency_slope"].ci_low > 0


def test_unknown_distractor_source_is_a_one_line_error():
    with pytest.raises(LlmassayError, match=r"distractors.*(task|kb)"):
        PositionProbe.options({"distractors": "web"})
