"""The factuality probe without a model: the KB, the verifier on planted errors, and the probe
recovering the exact precision, accuracy, copy rate and update success that a scripted
backend (`FactBackend`) was built with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import FactBackend
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.factuality.kb import FIELDS, bundled_kb, disagreement, load_kb
from llmassay.factuality.planted import planted_profiles, verifier_quality
from llmassay.factuality.verify import parse_number, profile_facts, text_facts, verify
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.factuality import FactualityProbe
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError

KB = bundled_kb()
# Countries whose record has every field from both sources (so each profile has 8 facts).
FULL = [c for c in sorted(KB.countries) if all(KB.countries[c].values.get(f) for f in FIELDS)][:12]


def write_task(tmp_path: Path, rows: list[dict]) -> str:
    path = tmp_path / "facts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def short_rows(codes: list[str], fields=("capital", "currencies")) -> list[dict]:
    questions = {"capital": "What is the capital of {}?", "currencies": "What is the currency of {}?"}
    return [{"id": f"{c}.{f}", "form": "short", "country": c, "field": f,
             "question": questions[f].format(KB.countries[c].name),
             "input": "Question: " + questions[f].format(KB.countries[c].name) + "\nAnswer:", "target": "x"}
            for c in codes for f in fields]


def profile_rows(codes: list[str]) -> list[dict]:
    q = "Write a short profile of {}."
    return [{"id": f"{c}.profile", "form": "profile", "country": c, "question": q.format(KB.countries[c].name),
             "input": q.format(KB.countries[c].name), "target": "x"} for c in codes]


def run(tmp_path: Path, rows: list[dict], backend: FactBackend, **options):
    task = load_task(write_task(tmp_path, rows))
    cfg = ProbeConfig(options=tuple(options.items()))
    return run_probe(FactualityProbe(), task, Engine(backend), cfg, SampleLog(tmp_path / "log.jsonl"))


# -- KB and verifier ------------------------------------------------------------------------
def test_kb_has_typed_records_passages_and_a_disagreement_rate():
    pe = KB.country("Peru")
    assert pe.code == "PE" and pe.first("capital") == "Lima" and "Sol" in pe.first("currencies")
    assert KB.passages["PE.capital"].text == "The capital of Peru is Lima."
    assert len(KB.countries) > 240 and len(KB.passages) > 1800
    rates = disagreement(KB)
    assert set(rates) == set(FIELDS)
    assert 0 < rates["capital"]["rate"] < 0.2 and rates["capital"]["both"] > 200
    # Both sources are kept where they disagree, and both verify.
    code = rates["capital"]["examples"][0]
    a, b = KB.countries[code].values["capital"].values()
    assert verify(KB, KB.countries[code], "capital", a).verdict == "supported"
    assert verify(KB, KB.countries[code], "capital", b).verdict == "supported"


def test_verdicts_and_number_tolerance():
    pe = KB.country("PE")
    population = pe.first("population")
    assert verify(KB, pe, "population", f"{population * 1.15:,.0f}").verdict == "supported"
    assert verify(KB, pe, "population", population * 1.6).verdict == "contradicted"
    assert verify(KB, pe, "capital", "Cusco").verdict == "contradicted"
    assert verify(KB, pe, "anthem", "x").verdict == "not_in_kb"
    assert verify(KB, None, "capital", "Lima").verdict == "not_in_kb"
    assert parse_number("33.4 million") == 33_400_000 and parse_number("1,285,216") == 1285216
    facts = profile_facts(KB, pe, {"capital": "Lima", "currencies": ["PEN", "Euro", "euro"], "languages": []})
    assert [(f.value, f.verdict, f.evidence) for f in facts] == [
        ("Lima", "supported", "PE.capital"), ("PEN", "supported", "PE.currencies"),
        ("Euro", "contradicted", "PE.currencies")]
    facts, rest = text_facts(KB, pe, "Peru is a country in South America. Its capital is Quito. It has llamas.")
    assert [(f.field, f.verdict) for f in facts] == [("continent", "supported"), ("capital", "contradicted")]
    assert rest == ["It has llamas."]


def test_verifier_catches_planted_errors_on_both_paths():
    quality = verifier_quality(KB, k=2, seed=3)
    for kind, t in quality["structured"].items():
        assert t["planted"] > 100, kind
        assert t["precision"] >= 0.95 and t["recall"] >= 0.95, (kind, t)
    for kind, t in quality["free"].items():
        assert t["precision"] >= 0.9 and t["recall"] >= 0.9, (kind, t)
    # Every unplanted fact of a planted profile is supported: the errors are the only flags.
    for p in planted_profiles(KB, k=1, seed=1)[:40]:
        facts = profile_facts(KB, KB.countries[p.country], p.record)
        flagged = {f.field for f in facts if f.verdict != "supported"}
        assert flagged == set(p.errors), p


# -- the probe recovers planted truth -------------------------------------------------------
def test_short_questions_accuracy_is_the_planted_one(tmp_path):
    codes = FULL[:10]
    wrong = {f"{c}.capital": () for c in codes[:3]}  # 3 of 20 answers name another country's capital
    result = run(tmp_path, short_rows(codes), FactBackend(KB, wrong, abstain=codes[9:]), rag="none")
    m = result.metrics
    assert m["exact_match[none]"].value == pytest.approx(15 / 20) and m["exact_match[none]"].n == 20
    assert m["contradicted[none]"].value == pytest.approx(3 / 20)
    assert m["abstention[none]"].value == pytest.approx(2 / 20)
    rows = {r["id"]: r for r in result.samples}
    assert rows[f"{codes[0]}.capital"]["modes"]["none"]["verdict"] == "contradicted"
    assert rows[f"{codes[0]}.capital"]["modes"]["none"]["evidence"] == f"{codes[0]}.capital"
    assert result.summary.metric == "correct[none]"


def test_profile_fact_precision_is_the_planted_one(tmp_path):
    codes = FULL[:8]
    # Half the profiles carry 2 wrong facts of 8 (capital, population): precision 6/8 there.
    wrong = {f"{c}.profile": ("capital", "population") for c in codes[:4]}
    result = run(tmp_path, profile_rows(codes), FactBackend(KB, wrong), rag="none")
    m = result.metrics
    assert m["facts_per_answer/structured[none]"].value == 8
    assert m["fact_precision/structured[none]"].value == pytest.approx((4 * 6 / 8 + 4) / 8)
    assert m["contradicted_rate/structured[none]"].value == pytest.approx(4 * 2 / 8 / 8)
    assert m["abstention/structured[none]"].value == 0
    # F1@8: recall = supported/8, precision as above.
    assert m["f1_at_k/structured[none]"].value == pytest.approx((4 * 0.75 + 4 * 1.0) / 8)
    # Free text: 6 recognised sentences (area and neighbours are not written), 2 wrong in half.
    assert m["facts_per_answer/free[none]"].value == 6
    assert m["fact_precision/free[none]"].value == pytest.approx((4 * 4 / 6 + 4) / 8)
    # Both paths check capital, continent, currencies, languages, population, calling code;
    # the unit is the profile (8), not the field (8 × 6).
    assert m["path_agreement[none]"].value == 1.0 and m["path_agreement[none]"].n == 8
    # One sentence of seven ("It is a nice place to visit.") is read by no pattern.
    assert m["unverified/free[none]"].value == pytest.approx(1 / 7) and "unverified/structured[none]" not in m
    row = next(r for r in result.samples if r["country"] == codes[0])
    facts = row["modes"]["none"]["structured"]["facts"]
    assert {f["field"]: f["verdict"] for f in facts}["capital"] == "contradicted"
    assert row["modes"]["none"]["free"]["unverified"] == ["It is a nice place to visit."]


def test_judge_self_verifies_unmatched_sentences_and_keeps_its_prompt(tmp_path):
    codes = FULL[:2]
    result = run(tmp_path, profile_rows(codes), FactBackend(KB, judge_says="no"), rag="none", judge="self",
                 paths="free")
    row = result.samples[0]["modes"]["none"]["free"]
    claim = [f for f in row["facts"] if f["field"] == "claim"]
    assert len(claim) == 1 and claim[0]["verdict"] == "contradicted" and "Claim: It is a nice" in claim[0]["judge_prompt"]
    assert result.metrics["fact_precision/free[none]"].value == pytest.approx(6 / 7)


def test_retrieval_recall_mrr_and_the_irrelevant_passage_control(tmp_path):
    codes = FULL[:6]
    backend = FactBackend(KB, copy_context=True)
    result = run(tmp_path, short_rows(codes, ("capital",)), backend, rag="none,bm25,irrelevant", k=3)
    m = result.metrics
    from llmassay.factuality.retrieval import Index

    index = Index(KB, "bm25")  # built afresh: the ranks the probe must report
    found = [index.search(f"What is the capital of {KB.countries[c].name}?", 3) for c in codes]
    ranks = [ids.index(f"{c}.capital") + 1 for c, ids in zip(codes, found)]
    assert m["recall_at_k[bm25]"].value == 1.0 and m["mrr[bm25]"].value == pytest.approx(sum(1 / r for r in ranks) / 6)
    # A copying reader is right exactly when no other capital passage is ranked above the gold one.
    first = [next(i for i in ids if i.endswith(".capital")) == f"{c}.capital" for c, ids in zip(codes, found)]
    assert m["correct[bm25]"].value == pytest.approx(sum(first) / 6)
    assert m["correct_when_retrieved[bm25]"].n == 6
    # A model that copies its context copies the other country's capital every time.
    assert m["copied_irrelevant[irrelevant]"].value == 1.0 and m["correct[irrelevant]"].value == 0.0
    assert "recall_at_k[none]" not in m
    prompts = [r.prompt or r.messages[0][1] for r in backend.asked]
    assert sum(p.startswith("Context:\n") for p in prompts) == 12


def test_edited_kb_update_success_and_memorisation_ratio(tmp_path):
    from llmassay.factuality.edit import edit_kb
    from llmassay.factuality.retrieval import Index

    codes = FULL[:6]
    edited = edit_kb(KB, [f"{c}.capital" for c in codes], seed=0)
    assert all(edited.countries[c].first("capital") != KB.countries[c].first("capital") for c in codes)
    Index(edited, "bm25").save(tmp_path / "idx")
    # Copies the context for the first 4 countries (follows the edit), memorised for the rest.
    assert load_kb(tmp_path / "idx").edits.keys() == {f"{c}.capital" for c in codes}

    class Partial(FactBackend):
        def _answer(self, r):
            text = r.prompt or r.messages[0][1]
            self.copy_context = not any(KB.countries[c].name + "?" in text for c in codes[4:])
            return super()._answer(r)

    result = run(tmp_path, short_rows(codes, ("capital",)), Partial(KB, copy_context=True, context_kb=edited),
                 rag="index",
                 index=str(tmp_path / "idx"), k=3)
    m = result.metrics
    assert m["update_success[index]"].value == pytest.approx(4 / 6)
    assert m["memorisation_ratio[index]"].value == pytest.approx(2 / 6)


def test_bad_options_and_tasks_are_one_line_errors(tmp_path):
    with pytest.raises(LlmassayError, match="factuality.rag"):
        FactualityProbe.options({"rag": "google"})
    with pytest.raises(LlmassayError, match="needs -P factuality.index"):
        run(tmp_path, short_rows(FULL[:1]), FactBackend(KB), rag="index")
    with pytest.raises(LlmassayError, match="no index.json"):
        run(tmp_path, short_rows(FULL[:1]), FactBackend(KB), rag="index", index=str(tmp_path))
    assert "country" in FactualityProbe().supports(load_task("arith_sample"))


def test_bundled_tasks_come_from_the_committed_script():
    facts, profiles = load_task("country_facts"), load_task("country_profiles")
    assert len(facts.samples) > 1000 and len(profiles.samples) > 200
    first = facts.samples[0]
    assert first.doc["country"] in KB.countries and first.doc["accepted"]
    # Rebuilding gives the same first items (deterministic shuffle).
    assert {s.doc["field"] for s in facts.samples[:40]} == {"capital", "continent", "currencies", "languages",
                                                            "calling_code"}


def test_report_colours_facts_by_verdict_and_escapes_model_text(tmp_path):
    from llmassay.evaluation import RunConfig, evaluate
    from llmassay.report.html import write_report

    codes = FULL[:3]

    class Hostile(FactBackend):
        def _answer(self, r):  # a JSON profile whose capital is markup
            text = super()._answer(r)
            return json.dumps({**json.loads(text), "capital": "<script>alert(1)</script>"}) if r.json_schema else text

    rows = short_rows(codes[:2], ("capital",)) + profile_rows(codes)
    evaluate(RunConfig(model="test/facts", tasks=[write_task(tmp_path, rows)], probes=["factuality"],
                       output_path=str(tmp_path / "out"), cache_path=str(tmp_path / "c.sqlite")),
             backend=Hostile(KB, {f"{codes[0]}.profile": ("capital",)}))
    html = write_report(tmp_path / "out").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    # The markup capital of 3 JSON profiles, and the planted wrong capital in one prose profile.
    assert html.count('class="verdict v-contradicted"') == 4
    assert f'title="{codes[0]}.capital"' in html and 'class="verdict v-supported"' in html


@pytest.mark.slow
def test_dense_index_finds_the_gold_passage_and_round_trips(tmp_path, monkeypatch):
    """Loads the packaged all-MiniLM-L6-v2 (sentence-transformers): slow tier."""
    from llmassay.factuality.kb import KnowledgeBase
    from llmassay.factuality.retrieval import Index, open_index

    monkeypatch.setenv("LLMASSAY_HOME", str(tmp_path / "home"))
    codes = ["PE", "JP", "FR", "CL", "EC", "CN", "DE", "BR"]  # a small KB: embedding all 1,909 passages takes long
    index = Index(KnowledgeBase({c: KB.countries[c] for c in codes}), "dense")
    assert index.search("What is the capital of Peru?", 3)[0] == "PE.capital"
    index.save(tmp_path / "idx")
    again = open_index(str(tmp_path / "idx"))
    assert again.kind == "dense" and again.search("What currency does Japan use?", 3)[0] == "JP.currencies"
