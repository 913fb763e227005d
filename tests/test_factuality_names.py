"""How names are read: a lowercase article before a country in free text ("bordered by the
United States") is still a neighbour claim, a sea is not a neighbour, and "St." is "Saint"
both to the verifier and to the source-disagreement count."""

from __future__ import annotations

import pytest

from llmassay.factuality.kb import Country, _sources_agree, bundled_kb, norm
from llmassay.factuality.verify import same_value, text_facts, verify

KB = bundled_kb()


def neighbour_claims(code: str, text: str) -> list[tuple[str, str]]:
    facts, _ = text_facts(KB, KB.countries[code], text)
    return [(norm(f.value), f.verdict) for f in facts if f.field == "neighbours"]


@pytest.mark.parametrize("code, text, expected", [
    ("CA", "Canada is bordered by the United States of America.",
     [("united states of america", "supported")]),
    ("SN", "Senegal borders the Gambia, Mali and the Democratic Republic of the Congo.",
     [("gambia", "supported"), ("mali", "supported"), ("democratic republic of the congo", "contradicted")]),
    ("RW", "Rwanda is bordered by the Democratic Republic of the Congo and Uganda.",
     [("democratic republic of the congo", "supported"), ("uganda", "supported")]),
    # Planted wrong neighbour after an article: read, and contradicted.
    ("CA", "Canada is bordered by the Gambia.", [("gambia", "contradicted")]),
    # A direction after the name is no part of it.
    ("RW", "Rwanda is bordered by Uganda to the north and Burundi to the south.",
     [("uganda", "supported"), ("burundi", "supported")]),
    # Water is no country: neither supported nor contradicted.
    ("SN", "Senegal is bordered by the Atlantic Ocean and the Gambia.", [("gambia", "supported")]),
])
def test_neighbours_after_a_lowercase_article_are_read(code, text, expected):
    assert neighbour_claims(code, text) == expected


def test_st_and_saint_name_one_place():
    assert norm("St. John's") == norm("Saint John's") == "saint john s"
    assert norm("Stanley") == "stanley" and norm("St Peter Port") == "saint peter port"
    assert same_value("capital", "St. Helier", "Saint Helier")
    assert verify(KB, KB.countries["JE"], "capital", "St Helier").verdict == "supported"
    assert verify(KB, KB.countries["JE"], "capital", "St. Peter Port").verdict == "contradicted"


def test_st_versus_saint_is_no_source_disagreement_even_without_alias_lists():
    # No spellings at all: only the name comparison can make the two sources agree.
    ag = Country("AG", "Antigua and Barbuda", (), {"capital": {"countryinfo": "Saint John's",
                                                               "geonames": "St. John's"}})
    assert _sources_agree(ag, "capital", same_value)
    other = Country("XX", "X", (), {"capital": {"countryinfo": "Saint John's", "geonames": "St. George's"}})
    assert not _sources_agree(other, "capital", same_value)
