"""What the factuality probe counts (issue #32): every claim of a free-text sentence once,
unread sentences as their own outcome, a short answer correct only when it asserts one
value, and path agreement averaged over the profiles that were sampled. Planted answers with
known right and wrong claims; a coverage simulation for the agreement interval."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakes import FactBackend, RuleBackend
from llmassay.cli import main
from llmassay.factuality.kb import bundled_kb
from llmassay.factuality.verify import counts, profile_facts, text_facts
from llmassay.metrics import bootstrap_mean
from llmassay.probes.factuality import FactualityProbe
from test_factuality import FULL, profile_rows, run

KB = bundled_kb()
FR = KB.country("FR")
# Four claims about France, two wrong (population, currency), written three ways.
ONE_PER_SENTENCE = ("The capital of France is Paris. France is in Europe. The population of France is about "
                    "3 million. The currency is the Yen.")
TWO_PER_SENTENCE = ("Its capital is Paris and its population is about 3 million. Its capital is Paris and its "
                    "currency is the Yen. Its capital is Paris and France is in Europe.")
UNREAD_WRONG = "The capital is Paris. Most people there pay in yen. Roughly three million people live there."


# -- item 2: free-text claims ----------------------------------------------------------------
@pytest.mark.parametrize("text", [ONE_PER_SENTENCE, TWO_PER_SENTENCE])
def test_every_claim_of_a_sentence_is_read_once(text):
    facts, rest = text_facts(KB, FR, text)
    assert counts(facts) == {"supported": 2, "contradicted": 2, "not_in_kb": 0}, facts
    assert {f.field for f in facts if f.verdict == "contradicted"} == {"population", "currencies"}
    assert rest == []


def test_a_value_ends_where_the_next_claim_begins():
    facts, _ = text_facts(KB, FR, "The currency is the Euro and the population is about 67 million. "
                                  "France borders Spain, Italy and Germany and is located in Europe.")
    assert [(f.field, f.value) for f in facts] == [
        ("currencies", "Euro"), ("population", "67 million"), ("neighbours", "Spain"), ("neighbours", "Italy"),
        ("neighbours", "Germany"), ("continent", "Europe")]
    assert {f.verdict for f in facts} == {"supported"}


def test_sentences_no_pattern_reads_are_unverified_not_silent():
    facts, rest = text_facts(KB, FR, UNREAD_WRONG)
    assert counts(facts)["supported"] == 1 and len(facts) == 1
    assert rest == ["Most people there pay in yen.", "Roughly three million people live there."]
    assert text_facts(KB, FR, "I don't know.") == ([], [])  # an abstention is no claim


def _profile_answers(texts: dict[str, str]):
    def answer(prompt: str) -> str:
        return next(t for code, t in texts.items() if f"profile of {KB.countries[code].name}." in prompt)
    return RuleBackend(answer)


def test_the_probe_reports_precision_over_read_claims_and_the_unverified_share_beside_it(tmp_path):
    codes = ["FR", "DE", "IT"]
    texts = {"FR": TWO_PER_SENTENCE, "DE": "Germany is a lovely place. Many people visit it.",
             "IT": UNREAD_WRONG.replace("Paris", "Rome")}
    result = run(tmp_path, profile_rows(codes), _profile_answers(texts), rag="none", paths="free")
    m = result.metrics
    # FR: 2 of 4 claims right; IT: 1 of 1; DE: nothing read (no precision).
    assert m["fact_precision/free[none]"].value == pytest.approx((2 / 4 + 1) / 2)
    assert m["fact_precision/free[none]"].n == 2
    # Unread sentences per answer: FR 0 of 4 outcomes, DE 2 of 2, IT 2 of 3.
    assert m["unverified/free[none]"].value == pytest.approx((0 + 1 + 2 / 3) / 3)
    assert m["abstention/free[none]"].value == 0  # DE said something, nothing the patterns read
    assert FactualityProbe.schema_version == 4


def test_factcheck_reports_the_unverified_share_as_the_probe_does(tmp_path):
    answers = [{"id": "two", "country": "FR", "answer": TWO_PER_SENTENCE},
               {"id": "unread", "country": "FR", "answer": UNREAD_WRONG},
               {"id": "none", "country": "FR", "answer": "I don't know."}]
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in answers))
    assert main(["factcheck", "--answers", str(path), "--output-path", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["fact_precision"]["value"] == pytest.approx((2 / 4 + 1) / 2)
    assert summary["unverified"]["value"] == pytest.approx((0 + 2 / 3) / 2) and summary["unverified"]["n"] == 2
    assert summary["abstention"]["value"] == pytest.approx(1 / 3)


# -- item 3: short answers -----------------------------------------------------------------
def _short_rows(limit: int = 200, field: str | None = None) -> list[dict]:
    from llmassay.tasks.loader import load_task

    docs = [s.doc for s in load_task("country_facts").samples[:limit]]
    return [{**d, "input": f"Question: {d['question']}\nAnswer:", "target": d["answer"]}
            for d in docs if field is None or d["field"] == field]


HEDGE = "Africa, Antarctica, Asia, Europe, North America, Oceania or South America."


def test_a_list_of_every_continent_is_neither_correct_nor_an_exact_match(tmp_path):
    rows = _short_rows(field="continent")
    assert len(rows) == 49
    result = run(tmp_path, rows, RuleBackend(lambda prompt: HEDGE), rag="none")
    assert result.metrics["correct[none]"].value == 0 and result.metrics["exact_match[none]"].value == 0
    assert result.metrics["contradicted[none]"].value == 1


def test_one_continent_named_in_a_sentence_is_correct(tmp_path):
    rows = _short_rows(field="continent")
    right = {r["question"]: r["answer"] for r in rows}

    def answer(prompt: str) -> str:
        return f"It is in {next(a for q, a in right.items() if q in prompt)}."

    result = run(tmp_path, rows, RuleBackend(answer), rag="none")
    assert result.metrics["correct[none]"].value == 1


@pytest.mark.parametrize("answer, correct, exact", [
    ("Paris", True, True),
    ("The capital of France is Paris.", True, False),
    ("Paris, France", True, True),
    ("It is not Lyon; the capital is Paris.", True, False),
    ("Lyon, Marseille, Paris, Nice or Toulouse.", False, False),
    ("Paris, Lyon", False, False),
    ("It is not Paris; the capital is Lyon.", False, False),
    ("Paris or Berlin", False, False),
])
def test_a_capital_is_correct_when_exactly_one_city_is_asserted(tmp_path, answer, correct, exact):
    rows = [{"id": "FR.capital", "form": "short", "country": "FR", "field": "capital",
             "question": "What is the capital of France?", "input": "Question: What is the capital of France?\nAnswer:",
             "target": "Paris"}]
    entry = run(tmp_path, rows, RuleBackend(lambda prompt: answer), rag="none").samples[0]["modes"]["none"]
    assert (entry["correct"], entry["exact_match"]) == (correct, exact)


def test_a_listed_structured_value_is_no_longer_the_first_element():
    facts = profile_facts(KB, FR, {"capital": "Paris, Lyon", "continent": "Europe, Asia"})
    assert [f.verdict for f in facts] == ["contradicted", "contradicted"]
    facts = profile_facts(KB, FR, {"capital": "Paris, France"})
    assert [f.verdict for f in facts] == ["supported"]


def test_an_official_language_may_be_one_of_several_but_none_wrong(tmp_path):
    from llmassay.factuality.answer import read_short

    ch = KB.country("CH")
    assert read_short(KB, ch, "languages", "German, French and Italian").correct
    assert not read_short(KB, ch, "languages", "German or Spanish").correct
    assert read_short(KB, FR, "currencies", "The euro (EUR), used by all.").correct  # "all" is no lek


# -- item 6: path agreement over profiles ---------------------------------------------------
def test_path_agreement_is_a_mean_over_profiles(tmp_path):
    codes = FULL[:4]

    class OneWrongSentence(FactBackend):  # profiles 2-4 write only a wrong capital in prose
        def _answer(self, r):
            text = super()._answer(r)
            if r.json_schema is None and any(f"profile of {KB.countries[c].name}." in r.prompt for c in codes[1:]):
                return "Its capital is Atlantis."
            return text

    m = run(tmp_path, profile_rows(codes), OneWrongSentence(KB), rag="none").metrics
    # Profile 1 agrees on 6 fields, profiles 2-4 disagree on their one: (1 + 0 + 0 + 0) / 4,
    # not the pooled 6 of 9 fields.
    agreement = m["path_agreement[none]"]
    assert agreement.value == pytest.approx(0.25) and agreement.n == 4 and agreement.method == "bootstrap"


def test_the_per_profile_interval_covers_at_its_nominal_level():
    """Profiles differ in how often the paths agree and in how many fields both check: the
    bootstrap over profiles of per-profile shares covers the mean at 95 % ± 2 points for 40
    profiles (the pooled field-level Wilson interval covers about 82 %)."""
    rng = np.random.default_rng(3)
    reps, n, a, b = 1000, 40, 2.0, 1.0
    rate = rng.beta(a, b, size=(reps, n))  # each profile's chance that the paths agree on a field
    fields = rng.integers(1, 9, size=(reps, n))
    shares = rng.binomial(fields, rate) / fields
    metrics = [bootstrap_mean(s, seed=i) for i, s in enumerate(shares)]
    covered = np.mean([m.ci_low <= a / (a + b) <= m.ci_high for m in metrics])
    assert abs(covered - 0.95) <= 0.02, covered
