"""Two-hop items from the country KB: "What is the currency of the country whose capital is
Lima?" = hop 1 ("Which country has Lima as its capital?" → Peru) then hop 2 ("What is the
currency of Peru?" → Sol).

The templates below were fixed before any model ran on them. A country gives items only
where every answer is unambiguous in the KB:

- its capital is one city in both sources, no other country's capital (or alternative
  spelling of one) is that city, and the city does not give the country away (Mexico
  City, Tunis / Tunisia, Singapore: a shared name or a shared 5-letter word start);
- a relation's value is given by a source, and the sources that give it agree (one value
  for the list field `currencies`).

Countries are the `N_COUNTRIES` most populous of the KB (well-known places: a model that
knows no hop tells us nothing about composing them); the items are shuffled with a seed so
`--limit N` draws a mix of relations. Deterministic for the same KB.
"""

from __future__ import annotations

import random
from typing import Any

from llmassay.compositionality.scoring import country_names
from llmassay.factuality.kb import SOURCES, Country, KnowledgeBase, norm
from llmassay.factuality.verify import accepted

N_COUNTRIES = 150
SEED = 35
HOP1 = "Which country has {capital} as its capital?"
# field → (two-hop template, hop-2 template: the same wording as the country_facts questions)
RELATIONS: dict[str, tuple[str, str]] = {
    "currencies": ("What is the currency of the country whose capital is {capital}?",
                   "What is the currency of {country}?"),
    "continent": ("On which continent is the country whose capital is {capital}?",
                  "On which continent is {country}?"),
    "calling_code": ("What is the international calling code of the country whose capital is {capital}?",
                     "What is the international calling code of {country}?"),
}
# Words of place and state names that say nothing about which country (Islamabad is not
# given away by "Islamic Republic of Pakistan").
_GENERIC = frozenset({"saint", "san", "santo", "santa", "city", "port", "new", "north", "south", "east", "west",
                      "republic", "island", "islands", "islamic", "islami", "democratic", "federal", "federation", "people",
                      "peoples", "kingdom", "united", "state", "states", "commonwealth", "principality", "grand",
                      "duchy", "union", "arab", "socialist", "plurinational", "bolivarian", "territory"})


def build_items(kb: KnowledgeBase, n_countries: int = N_COUNTRIES, seed: int = SEED) -> list[dict[str, Any]]:
    """The two-hop items (JSON objects) for the `n_countries` most populous countries."""
    taken = _capital_owners(kb)
    pool = [c for c in kb.countries.values() if isinstance(c.first("population"), (int, float))]
    pool.sort(key=lambda c: (-float(c.first("population")), c.code))
    items = []
    for c in pool[:n_countries]:
        capital = _capital(c)
        if capital is None or taken.get(norm(capital), set()) != {c.code} or _gives_away(c, capital):
            continue
        names = country_names(c)
        for name, (two_hop, hop2) in RELATIONS.items():
            value = _agreed(c, name)
            if value is None:
                continue
            answers = accepted(c, name)
            items.append({
                "id": f"{c.code}.{name}", "relation": name, "country": c.code, "field": name, "capital": capital,
                "question": two_hop.format(capital=capital),
                "hop1": {"question": HOP1.format(capital=capital), "answer": c.name, "accepted": names},
                "hop2": {"question": hop2.format(country=c.name), "answer": value, "accepted": answers},
                "answer": value, "accepted": answers,
            })
    random.Random(seed).shuffle(items)
    return items


def _capital(c: Country) -> str | None:
    """The country's one capital, when every source names the same city (spellings of one
    city count as one: Naypyidaw, Nay Pyi Taw); the first source's spelling."""
    first = c.first("capital")
    if not isinstance(first, str):
        return None
    spelled = c.spellings.get("capital") or {}

    def spellings(value: str) -> set[str]:
        return {norm(s) for s in spelled.get(value, ())} | {norm(value)}

    values = [str(v) for v in (c.values.get("capital") or {}).values()]
    agree = all(norm(v) in spellings(first) or norm(first) in spellings(v) for v in values)
    return first if agree else None


def _capital_owners(kb: KnowledgeBase) -> dict[str, set[str]]:
    """Normalised capital name (every source, every spelling) → the countries it is a capital of."""
    owners: dict[str, set[str]] = {}
    for c in kb.countries.values():
        for value, spelling in c.spelled("capital"):
            for text in (value, spelling):
                owners.setdefault(norm(text), set()).add(c.code)
    return owners


def _gives_away(c: Country, capital: str) -> bool:
    """The capital's name says the country: it contains (or is) a name of the country, or a
    word of it shares its first five letters with a word of one (Tunis, Tunisia)."""
    city = norm(capital)
    names = [norm(n) for n in (c.name, *c.aliases) if norm(n)]
    if any(f" {n} " in f" {city} " or f" {city} " in f" {n} " for n in names):
        return True
    stems = {w[:5] for n in names for w in n.split() if len(w) >= 4 and w not in _GENERIC}
    return any(w[:5] in stems for w in city.split() if len(w) >= 4 and w not in _GENERIC)


def _agreed(c: Country, name: str) -> str | None:
    """The field's value when the sources that give it agree (one value for a list)."""
    values = [v for s, v in (c.values.get(name) or {}).items() if s in SOURCES]
    if not values:
        return None
    if any(isinstance(v, list) and len(v) != 1 for v in values):
        return None
    flat = [str(v[0]) if isinstance(v, list) else str(v) for v in values]
    return flat[0] if len({norm(v) for v in flat}) == 1 else None
