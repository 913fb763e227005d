"""The needle probe recovers planted context windows: a reader that sees only the last N
tokens has an effective length of about N; one that sees only the first N loses exactly
the needles deeper than N. Haystacks are measured in the model's tokens, deterministic,
and sharing a prefix across cells changes no answer."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from fakes import WindowBackend
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.longctx.grid import Window, default_lengths, effective_length, resolve_lengths
from llmassay.longctx.haystack import Filler, Placed, build_haystack, read_filler
from llmassay.longctx.needles import KINDS, Needle, found, make_needles, shares_words
from llmassay.metrics import proportion
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.needle import NeedleProbe
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError

TASK = load_task("needle_sample")


def facts(task=TASK) -> dict[str, tuple[str, str]]:
    return {s.doc["needle"]: (s.doc["question"], s.doc["answer"]) for s in task.samples}


def run(tmp_path: Path, backend, limit: int = 8, **options):
    task = TASK.limited(limit)
    cfg = ProbeConfig(seed=0, options=tuple(sorted(options.items())))
    log = SampleLog(tmp_path / f"log-{len(list(tmp_path.iterdir()))}.jsonl")
    return run_probe(NeedleProbe(), task, Engine(backend), cfg, log)


def test_bundled_needles_cover_every_kind_and_nonlexical_ones_share_no_word():
    kinds = [s.doc["kind"] for s in TASK.samples]
    assert {k: kinds.count(k) for k in KINDS} == {k: 10 for k in KINDS}
    for s in TASK.samples:
        needle = Needle.from_doc(s.doc, s.id)
        if needle.kind == "nonlexical":
            assert shares_words(needle) == set(), s.id
    assert len({s.doc["answer"] for s in TASK.samples}) == 40
    assert make_needles(40, 20261129) == [Needle.from_doc(s.doc, s.id) for s in TASK.samples]  # the script's output


def test_exact_match_accepts_verbose_answers_and_refuses_near_misses():
    assert found("Sure! The pass key is 13067.", "13067")
    assert not found("The pass key is 130671.", "13067")
    assert found("uuid: 0B8E90E9-F646-4D5F-9AE8-5D0928398F9F", "0b8e90e9-f646-4d5f-9ae8-5d0928398f9f")
    assert not found("", "13067")


def test_haystack_fits_the_token_budget_and_places_the_needle_at_its_depth():
    filler = Filler(read_filler(None), lambda t: list(t.encode()))
    for budget in (256, 1000, 4096):
        for depth in (0.0, 0.3, 1.0):
            hay = build_haystack(filler, [Placed("NEEDLE.", depth)], budget, lambda t: len(t.encode()))
            size = len(hay.text.encode())
            assert budget - 3 * filler.mean_sentence_tokens <= size <= budget
            at = hay.text.index("NEEDLE.") / len(hay.text)
            assert abs(at - depth) <= 2 * filler.mean_sentence_tokens / size + 0.01, (budget, depth, at)
            assert abs(hay.needle_depth - at) <= filler.mean_sentence_tokens / size + 0.01  # reported where it landed


def test_filler_that_is_too_short_or_missing_is_a_one_line_error(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("One sentence. Two sentences.")
    filler = Filler(read_filler(short), lambda t: list(t.encode()))
    with pytest.raises(LlmassayError, match="haystack filler too short"):
        build_haystack(filler, [Placed("N.", 0.5)], 2000, lambda t: len(t.encode()))
    with pytest.raises(LlmassayError, match=r"^-P needle.haystack: .*fewer than two sentences"):
        read_filler(tmp_path / "empty.txt") if (tmp_path / "empty.txt").write_text("word") else None


@pytest.mark.parametrize("window", [700, 1500, 3000])
def test_a_reader_of_the_last_n_tokens_has_an_effective_length_of_about_n(tmp_path, window):
    lengths = "256,512,768,1024,1536,2048,2560,3072,4096"
    result = run(tmp_path, WindowBackend(facts(), window), lengths=lengths, depths="0,0.1,0.25,0.5,0.75,0.9,1")
    m = result.metrics
    grid = [int(n) for n in lengths.split(",")]
    # Past N the share of needles lost is about (L - N) / L, so the rule (accuracy >= 0.85 of
    # the 256-token accuracy) holds up to about N / 0.85 and not beyond.
    assert max(n for n in grid if n <= window) <= m["effective_length"].value <= window / 0.85
    assert m["accuracy_by_length[256]"].value == 1.0
    for n in grid:
        if n <= window:
            assert m[f"accuracy_by_length[{n}]"].value == 1.0
    # past the window the needle is lost exactly where it lies before the cut
    assert m["accuracy[4096@0]"].value == 0.0 and m["accuracy[4096@1]"].value == 1.0


def test_a_reader_of_the_first_n_tokens_shows_the_depth_pattern(tmp_path):
    result = run(tmp_path, WindowBackend(facts(), 1024, side="first"), lengths="512,2048,4096", depths="0,0.2,0.4,0.6,0.8,1")
    m = result.metrics
    assert all(m[f"accuracy[512@{d}]"].value == 1.0 for d in ("0", "0.2", "0.4", "0.6", "0.8", "1"))
    # at 4096 tokens only needles within the first 1024 (depth < 0.25) are seen
    assert [m[f"accuracy[4096@{d}]"].value for d in ("0", "0.2", "0.4", "0.6", "0.8", "1")] == [1, 1, 0, 0, 0, 0]
    assert [m[f"accuracy[2048@{d}]"].value for d in ("0", "0.2", "0.4", "0.6", "0.8", "1")] == [1, 1, 1, 0, 0, 0]
    heat = result.details["heatmap"]
    assert heat["lengths"] == [512, 2048, 4096] and heat["accuracy"][2] == [1, 1, 0, 0, 0, 0]


def test_rows_are_reproducible_and_cells_alone_get_the_answers_of_the_shared_grid(tmp_path):
    backend = WindowBackend(facts(), 1500)
    grid = run(tmp_path, backend, limit=4, lengths="512,1024,2048", depths="0,0.5,1")
    again = run(tmp_path, WindowBackend(facts(), 1500), limit=4, lengths="512,1024,2048", depths="0,0.5,1")
    assert json.dumps(grid.samples, sort_keys=True) == json.dumps(again.samples, sort_keys=True)
    for length in (512, 1024, 2048):
        for depth in ("0", "0.5", "1"):
            alone = run(tmp_path, WindowBackend(facts(), 1500), limit=4, lengths=str(length), depths=depth)
            for shared, single in zip(grid.samples, alone.samples):
                cell = f"{length}@{depth}"
                assert single["cells"][cell]["generation"] == shared["cells"][cell]["generation"]
                assert single["cells"][cell]["prompt_tokens"] == shared["cells"][cell]["prompt_tokens"]


def test_every_question_of_a_multi_needle_haystack_shares_its_prefix(tmp_path):
    backend = WindowBackend(facts(), 100_000)
    result = run(tmp_path, backend, limit=4, lengths="1024", depths="0,0.5", needles=3)
    assert result.metrics["accuracy"].value == 1.0 and result.metrics["all_found"].value == 1.0
    assert len(backend.prompts) == 4 * 2 * 3
    heads = Counter(p.rsplit("Question: ", 1)[0] for p in backend.prompts)
    assert len(heads) == 4 * 2 and set(heads.values()) == {3}  # three questions per haystack
    for head in heads:
        assert sum(s.doc["needle"] in head for s in TASK.samples) == 3
    cost = result.details["cost"]
    assert cost["prefill_tokens"] < 0.5 * cost["prompt_tokens"]  # shared haystacks are prefilled once


def test_grid_defaults_and_refusals():
    assert default_lengths(2048) == (256, 512, 1024, 2048)
    assert default_lengths(3000) == (256, 512, 1024, 2048, 3000)
    assert resolve_lengths((), None, Window(1024, 8192)) == (256, 512, 1024)
    assert resolve_lengths(("256", "512", "4096"), 512, Window(None, None)) == (256, 512)
    with pytest.raises(LlmassayError, match=r"exceeds the loaded context window of 2048 .*n_ctx=4096; it was trained for 8192"):
        resolve_lengths(("4096",), None, Window(2048, 8192))
    with pytest.raises(LlmassayError, match="max_len"):
        resolve_lengths((), None, Window(None, None))
    for bad, pattern in ((("lengths", "256,abc"), r"^-P needle\.lengths: "), (("depths", "0,1.5"), r"^-P needle\.depths: "),
                         (("haystack", "/no/such/file"), r"^-P needle\.haystack: /no/such/file is not a file")):
        with pytest.raises(LlmassayError, match=pattern):
            NeedleProbe.options(dict([bad]))


def test_effective_length_rule_uses_the_lower_ci_and_reports_the_point_rule_as_its_high_end():
    import numpy as np

    per_item = np.array([[1, 1, 0.8, 0.0]] * 40 + [[1, 0.8, 0.6, 0.0]] * 10)
    eff = effective_length(per_item, [256, 512, 1024, 2048])
    assert eff.base_accuracy == 1.0
    assert eff.metric.value == 512 and eff.metric.ci_high == 512  # 1024: mean 0.76 < 0.85
    mixed = np.array([[1, 1, 1]] * 5 + [[1, 0, 1]] * 1)  # 512: point 0.83 < 0.85 → stops at 256
    assert effective_length(mixed, [256, 512, 1024]).metric.value == 256
    zero = effective_length(np.zeros((5, 2)), [256, 512]).metric
    assert zero.value != zero.value


def test_items_without_needle_fields_are_refused_before_any_model_call(tmp_path):
    task = load_task("arith_sample")
    assert "needle" in NeedleProbe().supports(task)


def test_by_kind_counts_needles_not_cells(tmp_path):
    # Half the needles of each kind are known to the reader (found in every cell), half never:
    # a kind's rate is 0.5 over 10 needles, as uncertain as 10 coin flips, however many cells.
    known: dict[str, tuple[str, str]] = {}
    for kind in KINDS:
        of_kind = [s for s in TASK.samples if s.doc["kind"] == kind]
        known.update({s.doc["needle"]: (s.doc["question"], s.doc["answer"]) for s in of_kind[::2]})
    result = run(tmp_path, WindowBackend(known, 100_000), limit=40, lengths="256,512", depths="0,0.5,1")
    by_kind = result.details["by_kind"]
    assert sorted(by_kind) == sorted(KINDS)
    for kind, m in by_kind.items():
        needles = [r for r in result.samples if r["kind"] == kind]
        assert m["n"] == len(needles) == 10 and m["value"] == pytest.approx(0.5)
        assert m["ci_low"] <= proportion([0, 1] * 5).ci_low and m["ci_high"] >= proportion([0, 1] * 5).ci_high
