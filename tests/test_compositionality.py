"""The compositionality probe without a model: the item builder (deterministic, unambiguous,
equal to the shipped task), the answer readers, and planted truth — a scripted backend that
knows every single hop but misses every two-hop question has gap 1, one that composes has
gap 0, and self-ask is read from "So the final answer is:"."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Callable

import pytest

from fakes import ScriptedBackend, prompt_of
from llmassay.compositionality.items import build_items
from llmassay.compositionality.prompts import EXEMPLARS, FINAL, final_answer, follow_ups, prompt
from llmassay.compositionality.scoring import score_country, score_value
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.factuality.kb import bundled_kb, norm
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.compositionality import CompositionalityProbe
from llmassay.tasks.loader import load_task
from llmassay.types import GenerateRequest

KB = bundled_kb()
ITEMS = build_items(KB)
SHIPPED = resources.files("llmassay.tasks") / "data" / "country_twohop" / "country_twohop.jsonl"


# -- items --------------------------------------------------------------------------------
def test_the_builder_is_deterministic_and_the_shipped_task_is_its_output():
    assert build_items(KB) == ITEMS
    assert [json.loads(line) for line in SHIPPED.read_text(encoding="utf-8").splitlines()] == ITEMS
    assert build_items(KB, seed=1) != ITEMS and sorted(map(str, build_items(KB, seed=1))) == sorted(map(str, ITEMS))
    assert len(ITEMS) > 300 and {i["relation"] for i in ITEMS} == {"currencies", "continent", "calling_code"}


def test_items_are_unambiguous():
    owners: dict[str, set[str]] = {}
    for c in KB.countries.values():
        for value, spelling in c.spelled("capital"):
            owners.setdefault(norm(spelling), set()).add(c.code)
            owners.setdefault(norm(value), set()).add(c.code)
    lima = next(i for i in ITEMS if i["id"] == "PE.currencies")
    assert lima["question"] == "What is the currency of the country whose capital is Lima?"
    assert lima["hop1"]["question"] == "Which country has Lima as its capital?" and lima["hop1"]["answer"] == "Peru"
    assert lima["hop2"] == {"question": "What is the currency of Peru?", "answer": "Sol", "accepted": ["PEN", "Sol"]}
    for item in ITEMS:
        assert owners[norm(item["capital"])] == {item["country"]}, item["id"]  # no shared capital
        assert item["answer"] in item["accepted"]
    capitals = {i["capital"] for i in ITEMS}
    # a capital that names its country, a capital shared by two countries, sources that disagree
    assert not capitals & {"Mexico City", "Tunis", "Singapore", "Kuwait City", "Kingston", "Belgrade", "Jerusalem"}
    assert {"London", "Washington D.C.", "Lima", "Tokyo"} <= capitals
    assert "BI.continent" not in {i["id"] for i in ITEMS}  # Bujumbura or Gitega


# -- reading answers ----------------------------------------------------------------------
@pytest.mark.parametrize("code, answer, right", [
    ("PE", "Peru", True), ("PE", "The Republic of Peru.", True), ("PE", "Peru or Chile", False),
    ("PE", "Lima", False), ("GN", "Equatorial Guinea", False), ("GQ", "Equatorial Guinea", True),
    ("US", "USA", True), ("GB", "The UK", True), ("PE", "Chile\nPeru", False), ("PE", "", False),
])
def test_hop1_reads_one_country(code, answer, right):
    assert score_country(KB, code, answer)["correct"] is right


@pytest.mark.parametrize("field, answer, right", [
    ("currencies", "Sol", True), ("currencies", "PEN", True), ("currencies", "Euro", False),
    ("calling_code", "+51", True), ("calling_code", "51 or 52", False), ("continent", "South America", True),
    ("continent", "Europe", False), ("continent", None, False),
])
def test_values_are_read_by_the_factuality_reader(field, answer, right):
    assert score_value(KB, "PE", field, answer)["correct"] is right


@pytest.mark.parametrize("code, answer, right", [
    ("RW", "Rwandan franc", True), ("RW", "Swiss franc", False), ("RW", "Franc", False),
    ("RW", "Rwandan franc or euro", False), ("GB", "British pound", True), ("GB", "Pound", False),
    ("BF", "CFA franc", True), ("CN", "Chinese yuan", True), ("KR", "North Korean won", False),
    ("US", "American dollar", True), ("US", "Dollar", False), ("CA", "US dollar", False),
    ("LK", "Sri Lankan rupee", True), ("IN", "Rupee", False), ("LK", "Sri Lanka", False), ("RW", "Rwanda", False),
    ("CO", "Colombian pesos", True), ("US", "US dollars", True), ("NO", "Norwegian Kroneer", False),
])
def test_currencies_are_read_as_people_name_them(code, answer, right):
    assert score_value(KB, code, "currencies", answer)["correct"] is right


@pytest.mark.parametrize("text, mode, expected", [
    (" Sol\n", "direct", "Sol"),
    ("\n\nSol", "direct", "Sol"),
    ("", "direct", None),
    (" Lima is in Peru. So the final answer is: Sol.", "cot", "Sol"),
    (" So the final answer is Sol", "cot", "Sol"),
    (" so THE final answer is:  Nuevo sol.\nQuestion: next", "cot", "Nuevo sol"),
    (" Peru uses the sol.", "cot", None),
    (" So the final answer is:", "cot", None),
    (" Yes.\nFollow up: Which country?\nIntermediate answer: Peru\nSo the final answer is: Sol", "self_ask", "Sol"),
    (" Yes.\nFollow up: Which country?\nIntermediate answer: Peru", "self_ask", None),
])
def test_final_answer_extraction(text, mode, expected):
    assert final_answer(text, mode) == expected


def test_prompts_follow_the_papers_formats():
    sa = prompt("What is the currency of the country whose capital is Lima?", "self_ask")
    assert sa.endswith("Question: What is the currency of the country whose capital is Lima?\n"
                       "Are follow up questions needed here:")
    assert sa.count("Follow up:") == sa.count("Intermediate answer:") == 2 * len(EXEMPLARS)
    assert sa.count(FINAL) == len(EXEMPLARS) and sa.count("Are follow up questions needed here: Yes.") == 3
    assert prompt("Q?", "cot").count(FINAL) == 3 and FINAL not in prompt("Q?", "direct")
    assert prompt("Q?", "direct").endswith("Question: Q?\nAnswer:")
    assert follow_ups("Follow up: A?\nIntermediate answer: B\nFollow up: C?\nIntermediate answer: D") == [
        ("A?", "B"), ("C?", "D")]
    # nothing in the exemplars is an item's answer
    shots = prompt("Q?", "self_ask")
    assert not any(re.search(rf"\b{re.escape(i['hop1']['answer'])}\b", shots) for i in ITEMS)


# -- planted truth ------------------------------------------------------------------------
_BY_QUESTION = {}
for _item in ITEMS:
    _BY_QUESTION[_item["hop1"]["question"]] = ("hop1", _item)
    _BY_QUESTION[_item["hop2"]["question"]] = ("hop2", _item)
    _BY_QUESTION[_item["question"]] = ("two_hop", _item)


def twohop_backend(composes: Callable[[str, dict], bool], knows: Callable[[str, dict], bool] = lambda k, i: True,
                   self_ask_says_final: bool = True) -> ScriptedBackend:
    """Knows the hops `knows(kind, item)` says it knows; answers a two-hop question right when
    `composes(mode, item)`, in each mode's format (a wrong answer is another country's value)."""

    def answer(req: GenerateRequest) -> str:
        text = prompt_of(req)
        question = text.rsplit("Question: ", 1)[1].split("\n")[0]
        kind, item = _BY_QUESTION[question]
        mode = "self_ask" if text.endswith("needed here:") else "cot" if FINAL in text else "direct"
        wrong = "Narnia" if kind == "hop1" else {"currencies": "Zorkmid", "continent": "Atlantis",
                                                  "calling_code": "9999"}[item["field"]]
        if kind != "two_hop":
            return " " + (item[kind]["answer"] if knows(kind, item) else wrong)
        final = item["answer"] if composes(mode, item) else wrong
        if mode == "direct":
            return f" {final}"
        if mode == "cot":
            return f" The capital {item['capital']} is in some country. {FINAL} {final}."
        steps = (f" Yes.\nFollow up: {item['hop1']['question']}\nIntermediate answer: {item['hop1']['answer']}\n"
                 f"Follow up: {item['hop2']['question']}\nIntermediate answer: {final}\n")
        return steps + (f"{FINAL} {final}" if self_ask_says_final else "I am not sure.")

    return ScriptedBackend(lambda c, x: 0.0, answer)


def run(tmp_path: Path, backend: ScriptedBackend, limit: int = 30, **options):
    task = load_task("country_twohop")
    task.samples = task.samples[:limit]
    cfg = ProbeConfig(options=tuple(options.items()))
    return run_probe(CompositionalityProbe(), task, Engine(backend), cfg, SampleLog(tmp_path / "log.jsonl"))


def test_knowing_every_hop_but_never_composing_is_a_gap_of_one(tmp_path):
    out = run(tmp_path, twohop_backend(composes=lambda mode, item: False))
    m = out.metrics
    assert m["hop1"].value == m["hop2"].value == m["both_hops"].value == 1.0
    for mode in ("direct", "cot", "self_ask"):
        assert m[f"two_hop[{mode}]"].value == 0.0
        assert m[f"gap[{mode}]"].value == 1.0 and m[f"gap[{mode}]"].n == 30
        assert m[f"gap[{mode}]"].ci_low == pytest.approx(0.886, abs=0.002)  # Wilson at 30 of 30


def test_composing_is_a_gap_of_zero_and_self_ask_narrows_a_planted_gap(tmp_path):
    out = run(tmp_path, twohop_backend(composes=lambda mode, item: True))
    assert all(out.metrics[f"gap[{m}]"].value == 0.0 for m in ("direct", "cot", "self_ask"))

    # direct misses every currency item, self-ask none: the paired difference is the share of currency items
    plan = twohop_backend(composes=lambda mode, item: mode != "direct" or item["field"] != "currencies")
    m = run(tmp_path / "b", plan).metrics
    share = sum(i["field"] == "currencies" for i in ITEMS[:30]) / 30
    assert m["gap[direct]"].value == pytest.approx(share) and m["gap[self_ask]"].value == 0.0
    assert m["gap_vs_direct[self_ask]"].value == pytest.approx(-share)
    assert m["gap_vs_direct[self_ask]"].ci_high < 0
    assert m["tokens[self_ask]"].value > m["tokens[cot]"].value > m["tokens[direct]"].value
    assert m["tokens_vs_direct[self_ask]"].ci_low > 0


def test_the_gap_counts_only_items_whose_both_hops_are_right(tmp_path):
    # hop 2 known only for continents; nothing composes: the gap is 1 over the continent items alone
    plan = twohop_backend(composes=lambda mode, item: False, knows=lambda k, i: k == "hop1" or i["field"] == "continent")
    out = run(tmp_path, plan, prompting=("direct",))
    m = out.metrics
    continents = sum(i["field"] == "continent" for i in ITEMS[:30])
    assert m["gap[direct]"].n == continents and m["gap[direct]"].value == 1.0
    assert m["hop2"].value == pytest.approx(continents / 30) and "cot" not in out.samples[0]["modes"]

    nothing = run(tmp_path / "none", twohop_backend(lambda m, i: True, knows=lambda k, i: False), prompting=("direct",))
    assert "gap[direct]" not in nothing.metrics  # not measurable, never a 0
    assert "not measurable" in nothing.details["modes"][0]["gap"]
    assert "two-hop accuracy" in nothing.summary.verdict and nothing.summary.metric == "two_hop[direct]"


def test_self_ask_is_read_from_its_final_answer_line(tmp_path):
    out = run(tmp_path, twohop_backend(composes=lambda mode, item: True), prompting=("self_ask",))
    row = out.samples[0]
    item = ITEMS[0]
    assert row["modes"]["self_ask"]["answer"] == item["answer"] and row["modes"]["self_ask"]["correct"]
    assert row["modes"]["self_ask"]["follow_ups"][0] == [item["hop1"]["question"], item["hop1"]["answer"]]
    # the same transcript without "So the final answer is:" is unparsed and a miss
    silent = run(tmp_path / "s", twohop_backend(lambda m, i: True, self_ask_says_final=False), prompting=("self_ask",))
    m = silent.metrics
    assert m["parsed[self_ask]"].value == 0.0 and m["two_hop[self_ask]"].value == 0.0


def test_other_tasks_are_refused_in_one_line():
    assert "country_twohop" in CompositionalityProbe().supports(load_task("country_facts"))
    assert CompositionalityProbe().supports(load_task("country_twohop")) is None
