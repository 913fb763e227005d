"""Alternative names: a city or country named another way (Kiev, Peking, Burma) is the same
place to the short-answer scorer and to the verifier, a wrong place is still wrong, and the
filter keeps GeoNames' noise (airport codes, other cities' names) out of the alias sets."""

from __future__ import annotations

import pytest

from fakes import RuleBackend
from llmassay.factuality.aliases import city_aliases
from llmassay.factuality.kb import bundled_kb, norm
from llmassay.factuality.verify import same_value, text_facts, verify
from test_factuality import run, short_rows

KB = bundled_kb()


def test_city_alias_sets_come_from_geonames_and_drop_its_noise():
    kyiv = city_aliases("UA", "Kyiv")
    assert kyiv[0] == "Kyiv" and {"Kiev", "Kiew", "Kyiv"} <= set(kyiv)
    assert "IEV" not in kyiv and not any(a.isupper() for a in kyiv)  # airport codes
    assert all(a.isascii() or not any(ord(c) > 0x24F for c in a) for a in kyiv)  # Latin letters only
    assert "Peking" in city_aliases("CN", "Beijing") and "Astana" in city_aliases("KZ", "Nur-Sultan")
    # Mashhad's GeoNames list names Alexandria: another city's name is never an alias.
    assert "Alexandria" not in city_aliases("IR", "Mashhad")
    # "New Delhi" is New Delhi (its own entry), not Delhi, whose list also holds "New Delhi".
    assert "Old Delhi" not in city_aliases("IN", "New Delhi")
    assert city_aliases("PE", "Atlantis") == ["Atlantis"]


@pytest.mark.parametrize("code, field, value, verdict", [
    ("UA", "capital", "Kiev", "supported"),
    ("UA", "capital", "Kharkiv", "contradicted"),
    ("CN", "capital", "Peking", "supported"),
    ("CN", "capital", "Shanghai", "contradicted"),
    ("KZ", "capital", "Astana", "supported"),
    ("KZ", "capital", "Almaty", "contradicted"),
    ("TH", "neighbours", "Burma", "supported"),
    ("TH", "neighbours", "Vietnam", "contradicted"),
    ("GH", "neighbours", "Côte d'Ivoire", "supported"),
    ("GH", "neighbours", "Senegal", "contradicted"),
])
def test_the_verifier_accepts_an_alias_and_rejects_a_wrong_place(code, field, value, verdict):
    assert verify(KB, KB.countries[code], field, value).verdict == verdict


def test_free_text_claims_name_places_by_alias():
    facts, _ = text_facts(KB, KB.countries["TH"], "Thailand borders Burma and Vietnam. The capital is Krung Thep.")
    assert [(f.field, f.value, f.verdict) for f in facts] == [
        ("neighbours", "Burma", "supported"), ("neighbours", "Vietnam", "contradicted"),
        ("capital", "Krung Thep", "supported")]


def test_a_listed_country_whose_name_holds_and_is_one_claim():
    text = "Croatia is bordered by Slovenia, Hungary, Serbia, Bosnia and Herzegovina and Montenegro."
    facts, _ = text_facts(KB, KB.countries["HR"], text)
    assert [(f.value, f.verdict) for f in facts] == [
        ("Slovenia", "supported"), ("Hungary", "supported"), ("Serbia", "supported"),
        ("Bosnia and Herzegovina", "supported"), ("Montenegro", "supported")]
    # split at "and" it was "Bosnia" and "Herzegovina": two claims about no country
    facts, _ = text_facts(KB, KB.countries["VE"], "Venezuela borders Brazil, Guyana and Trinidad and Tobago.")
    assert [f.value for f in facts] == ["Brazil", "Guyana", "Trinidad and Tobago"]
    assert [f.verdict for f in facts] == ["supported", "supported", "contradicted"]  # no land border


def test_short_answers_naming_an_alias_are_correct_and_a_wrong_city_is_not(tmp_path):
    said = {"Ukraine": "Kiev", "China": "The capital of China is Peking.", "Kazakhstan": "Astana",
            "India": "Bombay", "Russia": "Saint Petersburg"}

    def answer(prompt: str) -> str:
        return next(v for k, v in said.items() if f"of {k}?" in prompt)

    result = run(tmp_path, short_rows(["UA", "CN", "KZ", "IN", "RU"], ("capital",)), RuleBackend(answer), rag="none")
    m = result.metrics
    assert m["correct[none]"].value == pytest.approx(3 / 5) and m["correct[none]"].n == 5
    assert m["contradicted[none]"].value == pytest.approx(2 / 5)
    verdicts = {r["country"]: r["modes"]["none"]["verdict"] for r in result.samples}
    assert verdicts == {"UA": "supported", "CN": "supported", "KZ": "supported", "IN": "contradicted",
                        "RU": "contradicted"}
    # A bare alias is an exact match; inside a sentence it is only `correct`.
    exact = {r["country"]: r["modes"]["none"]["exact_match"] for r in result.samples}
    assert exact["UA"] and exact["KZ"] and not exact["CN"]


def test_two_spellings_of_one_capital_are_no_source_disagreement():
    from llmassay.factuality.kb import _sources_agree, disagreement

    assert _sources_agree(KB.countries["MM"], "capital", same_value)  # Naypyidaw / Nay Pyi Taw
    assert not _sources_agree(KB.countries["SZ"], "capital", same_value)  # Lobamba / Mbabane
    rate = disagreement(KB)["capital"]
    assert 0 < rate["disagree"] < 10 and "MM" not in rate["examples"]


def test_an_edit_keeps_every_spelling_of_the_original_and_of_the_substitute():
    from llmassay.factuality.edit import edit_kb

    edited = edit_kb(KB, ["UA.capital"])
    record = edited.edits["UA.capital"]
    assert record["edited"] == "Kharkiv" and "Kiev" in record["original_spellings"]
    assert verify(edited, edited.countries["UA"], "capital", "Kharkov").verdict == "supported"
    assert norm("Kyiv") not in {norm(s) for s in city_aliases("UA", "Kharkiv")}
