"""Reading the answers: hop 1 names a country, hop 2 and the two-hop question a value of a
KB field (read by `factuality.answer.score_short`, the factuality probe's reader: aliases,
currency codes, "+51", hedges and lists are not correct).

A hop-1 answer is correct when the only country it names is the right one, under any of
its KB names ("Peru", "Republic of Peru") or `ABBREVIATIONS`; the longest name wins, so "Equatorial Guinea"
is not Guinea and "Papua New Guinea" is neither. Like every short answer here it is read
from its first line.
"""

from __future__ import annotations

from typing import Any

from llmassay.factuality.aliases import with_aliases
from llmassay.factuality.answer import score_short
from llmassay.factuality.kb import Country, KnowledgeBase, norm

# Abbreviations the KB leaves out (it keeps alternative spellings of four letters or more).
ABBREVIATIONS = {"US": ("USA", "U.S.", "U.S.A."), "GB": ("UK", "U.K."), "AE": ("UAE",)}

# id of the KB → (the KB, first word → [(words of a country name, the codes it names)])
_NAMES: dict[int, tuple[KnowledgeBase, dict[str, list[tuple[tuple[str, ...], frozenset[str]]]]]] = {}


def countries_named(kb: KnowledgeBase, text: str) -> list[frozenset[str]]:
    """The countries each country name in `text` names (longest names first, no overlaps)."""
    index = _index(kb)
    words = norm(text).split()
    hits = []
    for i, w in enumerate(words):
        for name, codes in index.get(w, ()):
            if tuple(words[i:i + len(name)]) == name:
                hits.append((i, i + len(name), codes))
    taken: list[tuple[int, int, frozenset[str]]] = []
    for i, j, codes in sorted(hits, key=lambda h: (h[0] - h[1], h[0])):
        if all(j <= a or i >= b for a, b, _ in taken):
            taken.append((i, j, codes))
    return [codes for _, _, codes in sorted(taken, key=lambda h: h[0])]


def country_names(c: Country) -> list[str]:
    """Every name a hop-1 answer may give the country by."""
    return with_aliases(c.name, (*c.aliases, *ABBREVIATIONS.get(c.code, ())))


def score_country(kb: KnowledgeBase, code: str, answer: str) -> dict[str, Any]:
    """Hop 1: is `code` the one country the answer's first line names?"""
    first = answer.strip().split("\n")[0]
    named = countries_named(kb, first)
    return {"answer": answer, "named": sorted({c for codes in named for c in codes}),
            "correct": bool(named) and all(code in codes for codes in named)}


def score_value(kb: KnowledgeBase, code: str, field: str, answer: str | None) -> dict[str, Any]:
    """Hop 2 or the two-hop question: the value of `field` of country `code`."""
    if answer is None:
        return {"answer": None, "correct": False}
    entry = score_short(kb, kb.country(code), field, answer)
    return {"answer": answer, "correct": bool(entry["correct"])}


def _index(kb: KnowledgeBase) -> dict[str, list[tuple[tuple[str, ...], frozenset[str]]]]:
    cached = _NAMES.get(id(kb))
    if cached is not None and cached[0] is kb:
        return cached[1]
    codes: dict[tuple[str, ...], set[str]] = {}
    for c in kb.countries.values():
        for name in country_names(c):
            words = tuple(norm(name).split())
            if words:
                codes.setdefault(words, set()).add(c.code)
    index: dict[str, list[tuple[tuple[str, ...], frozenset[str]]]] = {}
    for words, cs in codes.items():
        index.setdefault(words[0], []).append((words, frozenset(cs)))
    _NAMES[id(kb)] = (kb, index)
    return index
