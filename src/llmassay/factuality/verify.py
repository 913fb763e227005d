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
from llmassay.metrics import normalise_answer

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
    # "Iran, Islamic Republic of" vs "Iran": the part before the comma of a name known to hold
    # one names the place. Any other comma separates a list: "Paris, Lyon" is not Paris.
    return g == k or g == _comma_head(known, True) or _comma_head(given, False) == k


def _comma_head(text: Any, known: bool) -> str | None:
    """The part before the comma of a name that holds one: a KB value (`known`), or a name
    listed as holding one (pycountry's, "Washington, D.C."); None for anything else."""
    raw = str(text)
    if "," not in raw or not (known or norm(raw) in _comma_names()):
        return None
    return norm(raw.split(",")[0])


def accepted(country: Country, name: str) -> list[str]:
    """Every spelling that counts as right for a field (all sources, all spellings)."""
    return list(dict.fromkeys(s for _, s in country.spelled(name)))


def _without_own_name(country: Country, value: Any) -> Any:
    """"Paris, France" asserts Paris: a trailing ", <the country's own name>" is dropped."""
    head, _, tail = str(value).rpartition(",")
    own = {norm(n) for n in (country.name, *country.aliases)}
    return head if head.strip() and norm(tail) in own else value


def verify(kb: KnowledgeBase, country: Country | None, name: str, value: Any, text: str = "") -> Fact:
    """One atomic fact's verdict and evidence passage id."""
    if country is None or name not in FIELDS or not country.values.get(name):
        return Fact(name, value, "not_in_kb", None, text)
    evidence = f"{country.code}.{name}"
    if name in NUMBER_FIELDS:
        ok = any(same_value(name, value, v) for v in country.values[name].values())
    else:
        given = _without_own_name(country, value) if name == "capital" else value
        ok = any(_text_match(name, given, s) for s in accepted(country, name))
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
    # "Paris is the capital": the name is the capitalised words just before (with "of", "la" …
    # between them: "Andorra la Vella"), not the sentence up to there.
    ("capital", re.compile(r"(?<![\w'])(?P<v>[A-Z][\w.'-]*(?:\s+(?:(?:of|de|la|el|es|al|da|do|del|di|du)\s+)*[A-Z][\w.'-]*)*)"
                           r",? (?:is|serves as) (?:the|its) capital")),
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
# Places whose name holds a comma that is no list separator (beyond pycountry's countries).
_COMMA_PLACES = ("Washington, D.C.",)
# "Norway to the north": the direction is no part of the name.
_DIRECTION = re.compile(r"\s+(?:to|in|on) the (?:north|south|east|west)(?:-?(?:east|west))?(?:ern)?\b.*$", re.IGNORECASE)
_WATER = re.compile(r"\b(?:Ocean|Sea|Gulf|Bay|Strait|Channel|Lake|River)\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _names_with_separators() -> frozenset[str]:
    """Names holding "and" or a comma that are one name: the lists above and pycountry's."""
    names = set(_JOINED_NAMES) | set(_COMMA_PLACES)
    try:
        import pycountry
    except ImportError:  # pragma: no cover - pycountry ships with the [facts] extra
        pass
    else:
        names |= {n for c in pycountry.countries for a in ("name", "common_name", "official_name")
                  if (n := getattr(c, a, None)) and (" and " in n or ", " in n)}
    return frozenset(names)


@lru_cache(maxsize=1)
def _comma_names() -> frozenset[str]:
    return frozenset(norm(n) for n in _names_with_separators() if "," in n)


@lru_cache(maxsize=1)
def _joined_names() -> re.Pattern[str]:
    ordered = sorted(_names_with_separators(), key=len, reverse=True)  # "Republic of Trinidad and Tobago" first
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


# Where one claim ends and the next begins inside a sentence: the value of "the currency is
# the Euro and the population is …" ends at the last separator before "population".
_CLAUSE = re.compile(r",\s*(?:and\s+|but\s+|while\s+)?|;\s*|\s+(?:and|but|while|whereas)\s+")
_TAIL = re.compile(r"(?:[\s,;]+(?:and|but|while|whereas|the|its|it|their)\b)+[\s,;]*$|[\s,;]+$", re.IGNORECASE)
# A sentence that only declines to answer is no claim ("I don't know.").
ABSTAIN_PHRASES = ("i don't know", "i do not know", "not sure", "cannot answer", "can't answer", "no information",
                   "unknown", "i'm sorry", "i am sorry", "unable to")


def abstains(text: str) -> bool:
    """Empty, or a refusal / "I don't know" (case and spacing do not count)."""
    t = normalise_answer(text)
    return not t or any(p in t for p in ABSTAIN_PHRASES)


def sentence_claims(sentence: str) -> list[tuple[str, str]]:
    """(field, raw value) for every field pattern match in a sentence, each value cut where
    the next match's clause begins."""
    found = sorted(((name, m) for name, pattern in _PATTERNS for m in pattern.finditer(sentence)),
                   key=lambda x: x[1].start("v"))
    starts = sorted({m.start() for _, m in found})
    out = []
    for name, m in found:
        start, end = m.span("v")
        other = next((s for s in starts if start < s < end), None)
        if other is not None:
            cuts = [c.start() for c in _CLAUSE.finditer(sentence, start, other)]
            end = cuts[-1] if cuts else other
        raw = _TAIL.sub("", sentence[start:end]).strip(" .,")
        if raw:
            out.append((name, raw))
    return out


def _claim_key(name: str, value: str) -> tuple[str, Any]:
    number = parse_number(value) if name in NUMBER_FIELDS else None
    return name, number if number is not None else norm(value)


def text_claims(text: str) -> list[tuple[str | None, Any, str]]:
    """(field, value, sentence) for every recognised claim, each (field, value) once however
    often it is repeated; (None, None, sentence) for a sentence no pattern reads (the judge's
    job, or an `unverified` outcome). A sentence that only abstains is neither."""
    out: list[tuple[str | None, Any, str]] = []
    seen: set[tuple[str, Any]] = set()
    for sentence in _sentences(text):
        claims = sentence_claims(sentence)
        if not claims:
            if not abstains(sentence):
                out.append((None, None, sentence))
            continue
        for name, raw in claims:
            values = split_list(raw) if name in LIST_FIELDS else [raw]
            if name == "neighbours":  # "bordered by the Atlantic Ocean" names no country
                values = [_DIRECTION.sub("", v) for v in values if not _WATER.search(v)]
            for v in values:
                if v and _claim_key(name, v) not in seen:
                    seen.add(_claim_key(name, v))
                    out.append((name, v, sentence))
    return out


def text_facts(kb: KnowledgeBase, country: Country | None, text: str) -> tuple[list[Fact], list[str]]:
    """The free-text path's field-matched facts, and the sentences no pattern reads (left
    for a judge, else counted as `unverified`)."""
    facts, unmatched = [], []
    for name, value, sentence in text_claims(text):
        if name is None:
            unmatched.append(sentence)
        else:
            facts.append(verify(kb, country, name, value, sentence))
    return facts, unmatched


def counts(facts: list[Fact]) -> dict[str, int]:
    return {v: sum(f.verdict == v for f in facts) for v in VERDICTS}
