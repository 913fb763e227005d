"""A judge other than the model under test, and the memorisation ratio when nothing names
either value: a second model loaded by spec rules on the free path's unread sentences (its
name and prompt kept per fact), and M_R with n = 0 is reported "not measurable", never NaN."""

from __future__ import annotations

import json
import math

import pytest

import fakes
from fakes import FactBackend, RuleBackend
from llmassay.backends.base import _REGISTRY
from llmassay.factuality.edit import edit_kb
from llmassay.factuality.kb import bundled_kb
from llmassay.factuality.retrieval import Index
from llmassay.probes.factuality import NOT_MEASURABLE, FactualityProbe
from llmassay.types import LlmassayError
from test_factuality import FULL, profile_rows, run, short_rows, write_task

KB = bundled_kb()


@pytest.fixture
def verdict_kind(monkeypatch):
    monkeypatch.setitem(_REGISTRY, "verdict", "fakes:verdict_backend")
    fakes.VERDICT_BACKENDS.clear()
    return "verdict"


def test_a_second_model_judges_and_the_model_under_test_does_not(tmp_path, verdict_kind):
    codes = FULL[:2]
    under_test = FactBackend(KB, judge_says="yes")  # would say every claim is supported
    result = run(tmp_path, profile_rows(codes), under_test, rag="none", paths="free", judge="verdict/no",
                 judge_args="n_threads=1")
    claims = [f for r in result.samples for f in r["modes"]["none"]["free"]["facts"] if f["field"] == "claim"]
    assert len(claims) == 2 and {f["verdict"] for f in claims} == {"contradicted"}
    assert {f["judge"] for f in claims} == {"verdict/no"} and all("Claim: It is a nice" in f["judge_prompt"]
                                                                   for f in claims)
    # 6 field facts, all true, and the judged claim false: precision 6/7 per profile.
    assert result.metrics["fact_precision/free[none]"].value == pytest.approx(6 / 7)
    assert not any("Is the claim supported" in fakes.prompt_of(r) for r in under_test.asked)
    judge, = fakes.VERDICT_BACKENDS  # loaded once for the run, with its own model args
    assert judge.model_args == {"n_threads": 1} and len(judge.asked) == 2
    assert result.details["judge"] == "verdict/no"


def test_the_judge_that_says_yes_flips_the_precision(tmp_path, verdict_kind):
    result = run(tmp_path, profile_rows(FULL[:2]), FactBackend(KB, judge_says="no"), rag="none", paths="free",
                 judge="verdict/yes")
    assert result.metrics["fact_precision/free[none]"].value == 1.0


def test_a_bad_judge_spec_is_a_one_line_error():
    with pytest.raises(LlmassayError, match="factuality.judge.*KIND/NAME"):
        FactualityProbe.options({"judge": "gemma"})
    with pytest.raises(LlmassayError, match="factuality.judge.*unknown backend 'nosuch'"):
        FactualityProbe.options({"judge": "nosuch/model"})


def _edited_index(tmp_path, codes):
    edited = edit_kb(KB, [f"{c}.capital" for c in codes], seed=0)
    Index(edited, "bm25").save(tmp_path / "idx")
    return edited


def test_memorisation_ratio_counts_only_answers_naming_either_value(tmp_path):
    codes = FULL[:6]
    edited = _edited_index(tmp_path, codes)
    plan = {codes[0]: "edit", codes[1]: "edit", codes[2]: "edit", codes[3]: "edit", codes[4]: "original",
            codes[5]: "neither"}

    def answer(prompt: str) -> str:
        code = next(c for c in codes if f"of {KB.countries[c].name}?" in prompt)
        said = {"edit": edited.edits[f"{code}.capital"]["edited"], "original": KB.countries[code].first("capital"),
                "neither": "I am not sure"}
        return said[plan[code]]

    result = run(tmp_path, short_rows(codes, ("capital",)), RuleBackend(answer), rag="index",
                 index=str(tmp_path / "idx"))
    m = result.metrics
    assert m["update_success[index]"].value == pytest.approx(4 / 6) and m["update_success[index]"].n == 6
    ratio = m["memorisation_ratio[index]"]
    assert ratio.value == pytest.approx(1 / 5) and ratio.n == 5
    assert 0 <= ratio.ci_low <= 0.2 <= ratio.ci_high <= 1 and not math.isnan(ratio.ci_low)


def test_memorisation_ratio_without_any_named_value_is_not_measurable_and_no_nan_is_written(tmp_path):
    from llmassay.evaluation import RunConfig, evaluate
    from llmassay.report.html import write_report

    codes = FULL[:3]
    _edited_index(tmp_path, codes)
    out = tmp_path / "out"
    evaluate(RunConfig(model="test/scripted", tasks=[write_task(tmp_path, short_rows(codes, ("capital",)))],
                       probes=["factuality"], probe_options={"factuality.rag": "none,index",
                                                      "factuality.index": str(tmp_path / "idx")},
                       output_path=str(out), cache_path=str(tmp_path / "c.sqlite")),
             backend=RuleBackend(lambda prompt: "Atlantis"))
    text = (out / "results.json").read_text() if (out / "results.json").exists() else \
        next(out.rglob("results*.json")).read_text()
    results = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the results JSON"))
    (task, probes), = results["results"].items()
    metrics = probes["factuality"]
    assert metrics["update_success[index]"]["value"] == 0 and metrics["update_success[index]"]["n"] == 3
    assert "memorisation_ratio[index]" not in metrics
    rows = {r["rag"]: r for r in results["details"][task]["factuality"]["modes"]}
    assert rows["index"]["memorisation_ratio"].startswith(NOT_MEASURABLE)
    html = write_report(out).read_text()
    assert "not measurable (n = 0)" in html and ">nan<" not in html.lower()


def test_the_report_names_the_judge_of_each_judged_fact(tmp_path, verdict_kind):
    from llmassay.evaluation import RunConfig, evaluate
    from llmassay.report.html import write_report

    out = tmp_path / "out"
    evaluate(RunConfig(model="test/facts", tasks=[write_task(tmp_path, profile_rows(FULL[:1]))], probes=["factuality"],
                       probe_options={"factuality.paths": "free", "factuality.judge": "verdict/no"},
                       output_path=str(out), cache_path=str(tmp_path / "c.sqlite")),
             backend=FactBackend(KB))
    html = write_report(out).read_text()
    assert 'title="judge verdict/no said: no"' in html
    assert html.count('class="verdict v-contradicted"') == 1  # the judged sentence; the 6 field facts are true


def test_a_substitute_that_contains_the_original_name_is_not_memory(tmp_path):
    edited = _edited_index(tmp_path, ["JM"])
    assert edited.edits["JM.capital"]["edited"] == "New Kingston"  # Kingston is the original
    said = iter(["Kingston", "New Kingston"])
    result = run(tmp_path, short_rows(["JM"], ("capital",)), RuleBackend(lambda prompt: next(said)),
                 rag="none,index", index=str(tmp_path / "idx"))
    modes = result.samples[0]["modes"]
    assert (modes["none"]["follows_original"], modes["none"]["follows_edit"]) == (True, False)
    assert (modes["index"]["follows_original"], modes["index"]["follows_edit"]) == (False, True)
