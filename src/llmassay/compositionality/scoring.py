"""Reading the answers: hop 1 names a country, hop 2 and the two-hop question a value of a
KB field (read by `factuality.answer.score_short`, the factuality probe's reader: aliases,
currency codes, "+51", hedges and lists are not correct).

A hop-1 answer is correct when the only country it names is the right one, under any of
its KB names ("Peru", "Republic of Peru") or `ABBREVIATIONS`; the longest name wins, so "Equatorial Guinea"
is not Guinea and "Papua New Guinea" is neither. Like every short answer here it is read
from its first line.

Currencies are also read the way people name them, which the ISO names (pycountry) often
are not: "Rwandan franc" for "Rwanda Franc", "British pound" for "Pound Sterling", "CFA
franc" for "CFA Franc BCEAO" (`currency_named`). Without it a model that says "Rwandan
franc" in one mode and "RWF" in another would show a gap that is the reader's.
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
    country = kb.country(code)
    if score_short(kb, country, field, answer)["correct"]:
        return {"answer": answer, "correct": True}
    named = field == "currencies" and country is not None and currency_named(kb, country, answer)
    return {"answer": answer, "correct": bool(named), **({"read": "currency_named"} if named else {})}


def currency_named(kb: KnowledgeBase, country: Country, answer: str) -> bool:
    """The first line names one of the country's currencies as people do: every word is a
    word of the currency's ISO name ("core" words: not a word of the country's names nor
    one starting like one) or names the country (a word of its names, one whose first
    four letters start one: "Rwandan", "British" for Great Britain, or the ISO name's other
    words: "US" of "US Dollar"), and it holds a core
    word (a plural counts: "pesos") plus either such a country word, a second core word, or
    a core word no other currency of the KB has. "Franc" alone names no one currency, and
    the country's name alone ("Sri Lanka") names none."""
    own = {w for n in country_names(country) for w in norm(n).split()}
    stems = {w[:4] for w in own if len(w) >= 4}
    for name in (country.spellings.get("currencies") or {}):
        core = {w for w in norm(name).split() if len(w) > 2 and w not in own and w[:4] not in stems}
        # a plural ("pesos") is its singular when that is a core word
        words = [w[:-1] if w[-1:] == "s" and w[:-1] in core else w
                 for w in norm(answer.strip().split("\n")[0]).split() if w not in ("the", "of")]
        adjective = {w for w in words if w in own or (len(w) >= 4 and w[:4] in stems) or w in norm(name).split()} - core
        said = {w for w in words if w in core}
        if not said or not set(words) <= said | adjective:
            continue
        if adjective or len(said) >= 2 or any(_currency_words(kb).get(w, 0) == 1 for w in said):
            return True
    return False


_CURRENCY_WORDS: dict[int, tuple[KnowledgeBase, dict[str, int]]] = {}


def _currency_words(kb: KnowledgeBase) -> dict[str, int]:
    """Word → how many of the KB's currency names hold it."""
    cached = _CURRENCY_WORDS.get(id(kb))
    if cached is not None and cached[0] is kb:
        return cached[1]
    names = {n for c in kb.countries.values() for n in (c.spellings.get("currencies") or {})}
    counts: dict[str, int] = {}
    for name in names:
        for w in set(norm(name).split()):
            counts[w] = counts.get(w, 0) + 1
    _CURRENCY_WORDS[id(kb)] = (kb, counts)
    return counts


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
