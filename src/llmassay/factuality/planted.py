"""A planted-error set built from KB records: the verifier's own precision and recall.

Each profile is the country's true record (first source) with up to `k` fields changed, one
error type each: `capital` (swapped with a neighbour's, else another country's on the same
continent), `population` (scaled by 2-4× or ÷2-4: beyond the 20 % tolerance), `currency`
(a currency the country does not use). Every fact is labelled, so the verifier's flags
(contradicted) are scored per error type: precision = planted ÷ flagged on that field,
recall = flagged ÷ planted. The free-text path is scored on the same profiles written out
as sentences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from llmassay.factuality.kb import FIELDS, KnowledgeBase, norm
from llmassay.factuality.verify import accepted, profile_facts, text_facts

ERROR_TYPES = {"capital": "capital", "population": "population", "currency": "currencies"}


@dataclass(frozen=True)
class PlantedProfile:
    country: str
    record: dict[str, Any]
    errors: dict[str, str]  # field → error type


def planted_profiles(kb: KnowledgeBase, k: int = 2, seed: int = 0) -> list[PlantedProfile]:
    """Every country with a capital, population and currency; `k` of the three error types
    planted in each (chosen with `seed`), the other fields true."""
    rng = random.Random(seed)
    codes = sorted(kb.countries)
    all_currencies = sorted({v for c in kb.countries.values() for v in accepted(c, "currencies")})
    out = []
    for code in codes:
        c = kb.countries[code]
        if not all(c.values.get(f) for f in ERROR_TYPES.values()):
            continue
        record = {f: c.first(f) for f in FIELDS if c.values.get(f)}
        errors = {}
        for kind in rng.sample(sorted(ERROR_TYPES), min(k, len(ERROR_TYPES))):
            name = ERROR_TYPES[kind]
            if kind == "capital":
                record[name] = _other_capital(kb, code, rng)
            elif kind == "population":
                factor = rng.uniform(2.0, 4.0)
                record[name] = int(record[name] * factor) if rng.random() < 0.5 else int(record[name] / factor)
            else:
                mine = {norm(v) for v in accepted(c, "currencies")}
                record[name] = [rng.choice([x for x in all_currencies if norm(x) not in mine])]
            errors[name] = kind
        out.append(PlantedProfile(code, record, errors))
    return out


def _other_capital(kb: KnowledgeBase, code: str, rng: random.Random) -> str:
    c = kb.countries[code]
    mine = {norm(v) for v in accepted(c, "capital")}
    names = {x.name: x for x in kb.countries.values()}
    pool = [names[n].first("capital") for n in (c.first("neighbours") or []) if n in names and names[n].first("capital")]
    if not pool:
        pool = [x.first("capital") for x in kb.countries.values()
                if x.code != code and x.first("continent") == c.first("continent") and x.first("capital")]
    pool = [p for p in pool if norm(p) not in mine] or ["Atlantis"]
    return rng.choice(sorted(pool))


def profile_sentences(name: str, record: dict[str, Any]) -> str:
    """A profile written as prose, one field per sentence (the free-text path's input)."""
    parts = [f"{name} is a country in {record['continent']}." if record.get("continent") else "",
             f"Its capital is {record['capital']}." if record.get("capital") else "",
             f"The currency is {' and '.join(record['currencies'])}." if record.get("currencies") else "",
             f"The population of {name} is about {record['population']:,}." if record.get("population") else "",
             f"People speak {', '.join(record['languages'])}." if record.get("languages") else ""]
    return " ".join(p for p in parts if p)


def verifier_quality(kb: KnowledgeBase, k: int = 2, seed: int = 0) -> dict[str, dict[str, dict[str, Any]]]:
    """Per path, per error type: planted, flagged, true positives, precision, recall."""
    profiles = planted_profiles(kb, k, seed)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in ("structured", "free"):
        tally = {kind: {"planted": 0, "flagged": 0, "caught": 0} for kind in ERROR_TYPES}
        for p in profiles:
            country = kb.countries[p.country]
            if path == "structured":
                facts = profile_facts(kb, country, p.record)
            else:
                facts, _ = text_facts(kb, country, profile_sentences(country.name, p.record))
            for kind, name in ERROR_TYPES.items():
                on_field = [f for f in facts if f.field == name]
                planted = p.errors.get(name) == kind
                flagged = any(f.verdict == "contradicted" for f in on_field)
                tally[kind]["planted"] += planted
                tally[kind]["flagged"] += flagged
                tally[kind]["caught"] += planted and flagged
        for t in tally.values():
            t["precision"] = t["caught"] / t["flagged"] if t["flagged"] else float("nan")
            t["recall"] = t["caught"] / t["planted"] if t["planted"] else float("nan")
        out[path] = tally
    return out
