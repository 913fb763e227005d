"""Judge-free verification of atomic facts against the KB record.

An atomic fact is (country, field, value). It is `supported` when the value matches any
source's value of that field (within the tolerance for numbers; any element of the union
for lists), `contradicted` when the KB has the field and no source matches, `not_in_kb`
when the KB has no such country or field. The evidence is the passage id of the field.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from llmassay.factuality.kb import FIELDS, LIST_FIELDS, NUMBER_FIELDS, TOLERANCE, Country, KnowledgeBase, norm

VERDICTS = ("supported", "contradicted", "not_in_kb")
_SCALE = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9}
_NUMBER = re.compile(r"(\d[\d,. ]*\d|\d)\s*(thousand|million|billion|mn|bn|k|m)?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Fact:
    field: str
    value: Any
    verdict: str
    evidence: str | None  # the passage id that decides it
    text: str = ""  # the words the fact was read from (free text), or "field: value"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_number(value: Any) -> float | None:
    """12,345 / 12.3 million / 1.2bn / 33000000 → a float; None when there is no number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = _NUMBER.search(str(value))
    if not match:
        return None
    digits = match.group(1).replace(" ", "")
    # "1,234,567" uses commas for thousands; "1.2 million" a decimal point.
    digits = digits.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", digits) or "," in digits else digits
    if digits.count(".") > 1:
        digits = digits.replace(".", "")
    try:
        number = float(digits)
    except ValueError:
        return None
    return number * _SCALE.get((match.group(2) or "").lower(), 1.0)


def same_value(name: str, a: Any, b: Any) -> bool:
    """Whether two values of a field agree (numbers within TOLERANCE, lists as sets)."""
    if name in NUMBER_FIELDS:
        x, y = parse_number(a), parse_number(b)
        return x is not None and y is not None and abs(x - y) <= TOLERANCE[name] * max(abs(y), 1.0)
    if isinstance(a, list) or isinstance(b, list):
        return {norm(v) for v in _as_list(a)} == {norm(v) for v in _as_list(b)}
    return _text_match(name, a, b)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text_match(name: str, given: Any, known: Any) -> bool:
    g, k = norm(given), norm(known)
    if not g:
        return False
    if name == "calling_code":
        return g.replace(" ", "").lstrip("0") == k.replace(" ", "").lstrip("0")
    # "Washington, D.C." vs "Washington": the part before a comma names the place.
    return g == k or g == norm(str(known).split(",")[0]) or norm(str(given).split(",")[0]) == k


def accepted(country: Country, name: str) -> list[str]:
    """Every spelling that counts as right for a field (all sources, all spellings)."""
    out: list[str] = []
    for value in (country.values.get(name) or {}).values():
        for v in _as_list(value):
            for s in (country.spellings.get(name) or {}).get(str(v), [str(v)]):
                if s not in out:
                    out.append(s)
    return out


def verify(kb: KnowledgeBase, country: Country | None, name: str, value: Any, text: str = "") -> Fact:
    """One atomic fact's verdict and evidence passage id."""
    if country is None or name not in FIELDS or not country.values.get(name):
        return Fact(name, value, "not_in_kb", None, text)
    evidence = f"{country.code}.{name}"
    if name in NUMBER_FIELDS:
        ok = any(same_value(name, value, v) for v in country.values[name].values())
    elif name in LIST_FIELDS:
        ok = any(_text_match(name, value, s) for s in accepted(country, name))
    else:
        ok = any(_text_match(name, value, s) for s in accepted(country, name))
    return Fact(name, value, "supported" if ok else "contradicted", evidence, text)


def profile_facts(kb: KnowledgeBase, country: Country | None, record: Any) -> list[Fact]:
    """The structured path: each field of the JSON profile is one atomic fact (each element
    of a list field is one). Empty values and unknown keys are not facts."""
    if not isinstance(record, dict):
        return []
    facts = []
    for name in FIELDS:
        value = record.get(name)
        seen: set[str] = set()
        for v in _as_list(value) if name in LIST_FIELDS else [value]:
            if v is None or v == "" or isinstance(v, (dict, list)) or norm(v) in seen:
                continue  # a repeated list element is one fact, as FActScore dedupes claims
            seen.add(norm(v))
            facts.append(verify(kb, country, name, v, f"{name}: {v}"))
    return facts


# -- free text: sentences → recognised field claims -----------------------------------------
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("capital", re.compile(r"capital(?: city)?(?: of [\w .'-]+?)? (?:is|was|:)\s+(?P<v>[A-Z][\w .'-]*?)(?=[,.;(]|\s+and\s|$)")),
    ("capital", re.compile(r"(?P<v>[A-Z][\w .'-]*?),? (?:is|serves as) (?:the|its) capital")),
    ("continent", re.compile(r"(?:located|situated|lies|is|country) in (?:the )?(?:continent of )?(?P<v>(?:North |South )?"
                             r"(?:America|Europe|Asia|Africa|Oceania|Antarctica))")),
    ("currencies", re.compile(r"currenc(?:y|ies)(?: of [\w .'-]+?)? (?:is|are|:)\s+(?:the )?(?P<v>[\w .,'-]+?)(?=[.;(]|$)")),
    ("languages", re.compile(r"languages?(?: of [\w .'-]+?)?(?: spoken)? (?:is|are|include|:)\s+(?P<v>[\w ,'-]+?)(?=[.;(]|$)")),
    ("languages", re.compile(r"(?:people )?speak (?P<v>[A-Z][\w ,'-]+?)(?=[.;(]|$)")),
    ("population", re.compile(r"population(?: of [\w .'-]+?)? (?:is|was|of|:)\s+(?:about |around |approximately |roughly |over |nearly )?(?P<v>[\d][\d,. ]*(?:\s*(?:thousand|million|billion))?)")),
    ("area_km2", re.compile(r"(?:area|covers)(?: of [\w .'-]+?)? (?:is |of |:)?(?:about |around |approximately |roughly |over )?(?P<v>[\d][\d,. ]*(?:\s*(?:thousand|million))?)\s*(?:square kilomet|km)")),
    # "bordered by the United States …", "the Gambia": a lowercase article may precede the name.
    ("neighbours", re.compile(r"(?:borders?|bordered by|neighbou?rs(?: are| include)?)\s+(?P<v>(?:the\s+)?[A-Z][\w ,'-]+?)(?=[.;(]|$)")),
    ("calling_code", re.compile(r"(?:calling|dialling|dialing|country|telephone|phone) code(?: of [\w .'-]+?)? (?:is|:)\s+\+?(?P<v>\d{1,4})")),
)
_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+")
# Country names that hold a list separator ("Trinidad and Tobago", "Bonaire, Sint Eustatius
# and Saba") stay one item; without pycountry the common ones are listed here.
_JOINED_NAMES = ("Antigua and Barbuda", "Bosnia and Herzegovina", "Saint Kitts and Nevis", "Saint Pierre and Miquelon",
                 "Saint Vincent and the Grenadines", "Sao Tome and Principe", "São Tomé and Príncipe",
                 "Trinidad and Tobago", "Turks and Caicos Islands", "Wallis and Futuna")
# "Norway to the north": the direction is no part of the name.
_DIRECTION = re.compile(r"\s+(?:to|in|on) the (?:north|south|east|west)(?:-?(?:east|west))?(?:ern)?\b.*$", re.IGNORECASE)
_WATER = re.compile(r"\b(?:Ocean|Sea|Gulf|Bay|Strait|Channel|Lake|River)\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _joined_names() -> re.Pattern[str]:
    names = set(_JOINED_NAMES)
    try:
        import pycountry
    except ImportError:  # pragma: no cover - pycountry ships with the [facts] extra
        pass
    else:
        names |= {n for c in pycountry.countries for a in ("name", "common_name", "official_name")
                  if (n := getattr(c, a, None)) and (" and " in n or ", " in n)}
    ordered = sorted(names, key=len, reverse=True)  # "Republic of Trinidad and Tobago" before its tail
    return re.compile("|".join(re.escape(n) for n in ordered), re.IGNORECASE)


def split_list(raw: str) -> list[str]:
    """The items of a listed claim ("Brazil, Colombia and Trinidad and Tobago"), split at
    commas and "and" except inside a country name that holds one."""
    kept: list[str] = []

    def hold(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    held = _joined_names().sub(hold, raw)
    items = [v.strip(" .") for v in _SPLIT.split(held) if v.strip(" .")]
    return [re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], v) for v in items]


def _sentences(text: str) -> list[str]:
    try:
        import pysbd
    except ImportError:  # pragma: no cover - pysbd ships with the [facts] extra
        return [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    return [s.strip() for s in pysbd.Segmenter(language="en", clean=False).segment(text) if s.strip()]


def text_claims(text: str) -> list[tuple[str | None, Any, str]]:
    """(field, value, sentence) for every recognised claim; (None, None, sentence) for a
    sentence where no field is recognised (the judge's job)."""
    out: list[tuple[str | None, Any, str]] = []
    for sentence in _sentences(text):
        found = False
        for name, pattern in _PATTERNS:
            match = pattern.search(sentence)
            if not match:
                continue
            found = True
            raw = match.group("v").strip(" .,")
            if name in LIST_FIELDS:
                values = split_list(raw)
                if name == "neighbours":  # "bordered by the Atlantic Ocean" names no country
                    values = [_DIRECTION.sub("", v) for v in values if not _WATER.search(v)]
                out += [(name, v, sentence) for v in values]
            else:
                out.append((name, raw, sentence))
            break
        if not found:
            out.append((None, None, sentence))
    return out


def text_facts(kb: KnowledgeBase, country: Country | None, text: str) -> tuple[list[Fact], list[str]]:
    """The free-text path's field-matched facts, and the sentences left for a judge."""
    facts, unmatched = [], []
    for name, value, sentence in text_claims(text):
        if name is None:
            unmatched.append(sentence)
        else:
            facts.append(verify(kb, country, name, value, sentence))
    return facts, unmatched


def counts(facts: list[Fact]) -> dict[str, int]:
    return {v: sum(f.verdict == v for f in facts) for v in VERDICTS}
