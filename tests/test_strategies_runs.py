"""The strategies probe beyond its planted gains: exemplar-order brittleness recovered from
a backend whose answer depends on the order of its exemplars, a growing --limit that asks
the model only for the new items, the chat template recorded by identity, and the
cross-run table and cost–accuracy grid of `llmassay tokens strategies`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import ScriptedBackend, prompt_of
from test_strategies import TASK, TRUTH, is_answer_stage, fixed_backend, question, run, table, wrong

from llmassay.engine.chat import chat_template_id
from llmassay.metrics import holm
from llmassay.tasks.loader import load_task
from llmassay.tokens.strategy_runs import Panel, load_panels, markdown_table, projection
from llmassay.types import LlmassayError

_SHOT_ANSWER = re.compile(r"Answer: (-?\d+)\n\n")


def first_smallest(prompt: str) -> bool:
    """The planted order rule: right iff the first exemplar's answer is the smallest shown."""
    answers = [int(a) for a in _SHOT_ANSWER.findall(prompt)]
    return bool(answers) and answers[0] == min(answers)


def order_backend() -> ScriptedBackend:
    """Right on a k-shot prompt iff its first exemplar has the smallest answer: which items
    are right depends on the exemplars' order alone, with no order better on average."""

    def answer(req) -> str:
        q = question(req)
        ok = first_smallest(prompt_of(req))
        return f" {TRUTH[q] if ok else wrong(q)}"

    return ScriptedBackend(lambda c, x: 0.0, answer, identity="order")


def test_exemplar_order_flips_are_recovered(tmp_path) -> None:
    backend = order_backend()
    out = run(tmp_path, backend, limit=60, strategies="icl3", orders=2)
    order = out["details"]["exemplar_order"]
    assert order["variants"] == ["icl3", "icl3@order1", "icl3@order2"]
    # Planted truth, item by item: the rule applied to the three prompts each item was asked.
    by_item: dict[tuple[str, frozenset[str]], set[bool]] = {}  # an item: its question and its exemplars
    for r in backend.asked:
        p = prompt_of(r)
        if p.count("Question:") == 4:
            by_item.setdefault((question(r), frozenset(p.split("\n\n")[:-1])), set()).add(first_smallest(p))
    assert len(by_item) == 60
    expected = sum(len(v) == 2 for v in by_item.values()) / 60
    assert order["flip_rate"] == pytest.approx(expected) and 0.4 < expected < 0.9  # ≈ 1 - (1/3)³ - (2/3)³
    lo, hi = order["flip_rate_ci"]
    assert lo < expected < hi
    accs = [table(out)[v]["acc"] for v in order["variants"]]
    assert order["spread"] == pytest.approx(max(accs) - min(accs))
    # An order-blind model never flips.
    blind = run(tmp_path / "blind", fixed_backend(), limit=20, strategies="icl3", orders=2)
    assert blind["details"]["exemplar_order"]["flip_rate"] == 0.0


def test_a_larger_limit_asks_only_for_the_new_items(tmp_path) -> None:
    first = fixed_backend()
    run(tmp_path, first, limit=4, strategies="icl1,cot,sc,ltm", k=2)
    old = {question(r) for r in first.asked}
    grown = fixed_backend()
    out = run(tmp_path, grown, limit=7, strategies="icl1,cot,sc,ltm", k=2)  # same cache, same output path
    new = {question(r) for r in grown.asked}
    assert len(old) == 4 and len(new) == 3 and not old & new
    assert len(grown.asked) == len(first.asked) * 3 // 4  # every request of the old items came from the cache
    assert table(out)["zero_shot"]["n"] == 7


class _TemplatedTokenizer:
    chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"


def test_the_chat_template_is_recorded_by_identity(tmp_path) -> None:
    backend = fixed_backend()
    backend.chat_model = lambda: True
    backend.tokenizer = _TemplatedTokenizer()
    out = run(tmp_path, backend, limit=3, strategies="icl1,cot")
    ident = out["details"]["chat_template_id"]
    assert ident == chat_template_id(backend) and re.fullmatch(r"sha256:[0-9a-f]{12}", ident)
    other = type("T", (), {"chat_template": _TemplatedTokenizer.chat_template + " "})()
    assert chat_template_id(type("B", (), {"tokenizer": other})()) != ident
    raw = run(tmp_path / "raw", fixed_backend(), limit=3, strategies="icl1,cot")  # a base model: none applied
    assert raw["details"]["chat_template_id"] is None


def test_tokens_strategies_writes_the_table_and_the_grid(tmp_path) -> None:
    run(tmp_path / "a", fixed_backend(), limit=8, strategies="icl1,cot,sc", k=2)
    panels = load_panels([str(tmp_path / "a" / "out")])
    assert [(p.task, p.n) for p in panels] == [("arith_sample", 8)]
    text = markdown_table(panels)
    assert text.count("\n| test/scripted | arith_sample | 8 |") == 4 and "maj@2; pass@2" in text
    assert "no significant gain at" in text
    plot = tmp_path / "grid.png"
    done = subprocess.run([sys.executable, "-m", "llmassay.cli", "tokens", "strategies", str(tmp_path / "a" / "out"),
                           "--plot", str(plot)], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert "| zero_shot |" in done.stdout and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "empty").mkdir()
    with pytest.raises(LlmassayError, match="no results_"):
        load_panels([str(tmp_path / "empty")])
    bad = subprocess.run([sys.executable, "-m", "llmassay.cli", "tokens", "strategies", str(tmp_path / "empty")],
                         capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "no results_" in bad.stderr


def test_reasoning_cut_by_the_cap_is_counted_and_kept(tmp_path) -> None:
    def rambler(words: int) -> ScriptedBackend:
        def answer(req) -> str:
            q = question(req)
            return " ".join(["so"] * words) if req.max_tokens > 12 else f" {wrong(q)}"

        backend = ScriptedBackend(lambda c, x: 0.0, answer, identity=f"ramble{words}")
        backend.cut_at_max_tokens = True
        return backend

    long = run(tmp_path, rambler(40), limit=5, strategies="cot,sc,ltm", k=2, reasoning_tokens=16)
    short = run(tmp_path / "s", rambler(5), limit=5, strategies="cot,sc,ltm", k=2, reasoning_tokens=16)
    for name in ("cot", "sc", "ltm"):
        assert table(long)[name]["capped_share"] == 1.0 and table(short)[name]["capped_share"] == 0.0
    assert "capped_share" not in table(long)["zero_shot"]
    rows = [json.loads(line) for line in next((tmp_path / "out").glob("samples_*.jsonl")).read_text().splitlines()]
    steps = {n: len(rows[0]["results"][n]["reasoning"]) for n in ("cot", "sc", "ltm")}
    assert steps == {"cot": 1, "sc": 2, "ltm": 2}  # one chain; k chains; decompose, then solve
    assert rows[0]["results"]["cot"]["reasoning"] == [" ".join(["so"] * 16)]


def test_a_gain_significant_alone_is_not_called_one_among_several(tmp_path) -> None:
    """Planted: chain of thought turns exactly 6 of 40 wrong items right (McNemar p = 2/2⁶ =
    0.031); tested beside three other strategies, Holm multiplies it by 4: not a gain."""
    items = [s.doc["input"] for s in load_task(TASK).samples[:40]]
    helped = set(items[:6])

    def answer(req) -> str:
        q = question(req)
        if req.max_tokens > 12:
            return f"It is {TRUTH[q] if q in helped else wrong(q)}."
        if is_answer_stage(req):
            return " " + re.findall(r"It is (-?\d+)", prompt_of(req))[-1]
        return f" {wrong(q)}"

    backend = ScriptedBackend(lambda c, x: 0.0, answer, identity="six")
    alone = table(run(tmp_path, backend, strategies="cot"))["cot"]
    assert alone["gained"] == 6 and alone["lost"] == 0 and alone["mcnemar_p"] == pytest.approx(2 / 2**6)
    assert alone["holm_p"] == alone["mcnemar_p"] and alone["verdict"].startswith("gain of +15%")
    among = table(run(tmp_path / "four", backend, strategies="icl3,cot,sc,ltm", k=3, orders=0))
    assert among["cot"]["holm_p"] == pytest.approx(4 * 2 / 2**6)
    assert among["cot"]["verdict"].startswith("no significant gain") and "Holm-adjusted over 4: 0.12" in among["cot"]["verdict"]


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002]) and holm([]) == [] and holm([0.9, 0.4]) == [0.9, 0.8]


def test_projection_is_the_measured_tokens_times_the_items() -> None:
    entries = [{"strategy": "zero_shot", "n": 5, "gen_tokens": 10.0, "prompt_tokens": 40.0},
               {"strategy": "cot", "n": 5, "gen_tokens": 90.0, "prompt_tokens": 160.0}]
    text = projection([Panel("m", "t", entries)], 100, decode_tps=100.0, prefill_tps=400.0)
    # 100 items × 100 generated = 10,000 tokens at 100/s (100 s) + 20,000 prompt tokens at 400/s (50 s) = 150 s
    assert "| m | t | 5 | 100 | 200 | 10,000 | 20,000 | 0.04 |" in text and f"{150 / 3600:.2f}" == "0.04"
    assert "| m | all | | | | 10,000 | 20,000 | 0.04 |" in text
    assert projection([Panel("m", "t", entries)], 10).endswith("| 1,000 | 2,000 | — |")
