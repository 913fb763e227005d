"""Reading a short answer: which values of the asked field it asserts.

A short answer is `correct` when it asserts one value of the field and that value is
accepted for the country (any source, any spelling). Every country's values of the field
are candidates, so a hedge or a list names several and is not correct ("Lyon, Paris or
Nice"; every continent at once). For the list fields (currency, official language: "an
official language of …") several values may be asserted, but every one must be accepted.

For a capital, the country's other cities (GeoNames, written capitalised) are candidates
too, so "Lyon, Marseille, Paris, Nice or Toulouse" names five. The country's own name counts
only when nothing else is named (the capital of Singapore is Singapore).
A value is asserted when one of its spellings appears as whole words — the longest match
first, so "New Kingston" is not Kingston — and is not negated: "not Paris", "isn't Paris",
"neither Paris nor Lyon", "rather than Paris" (a negation word up to `WINDOW` words before,
in the same clause), or "Paris is not …". An all-capitals code (EUR, ALL, TOP) counts only
written in capitals, so the word "all" does not name the Albanian lek.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from llmassay.factuality.kb import LIST_FIELDS, Country, KnowledgeBase, norm
from llmassay.factuality.verify import abstains, accepted, verify
from llmassay.metrics import normalise_answer

WINDOW = 3  # words before a mention that a negation may stand in
_WORD = re.compile(r"[A-Za-z0-9]+")
_CLAUSE_MARK = re.compile(r"[;:!?,]|\.\s")
_CLAUSE_WORDS = frozenset({"but", "however", "whereas", "although", "though"})
_NEGATIONS = frozenset({"not", "no", "never", "neither", "nor", "unlike", "except", "excluding"})
_NEGATION_PAIRS = frozenset({("rather", "than"), ("instead", "of"), ("other", "than")})
_COPULAS = frozenset({"is", "was", "are", "were", "isn", "wasn", "aren", "weren"})


@dataclass(frozen=True)
class Reading:
    """The values a short answer asserts: `right` (accepted for the country, one entry per
    value however it is spelled) and `wrong` (other KB values of the field)."""

    right: tuple[str, ...]
    wrong: tuple[str, ...]
    negated: tuple[str, ...]  # values named only under a negation
    single: bool  # the field has one value (capital, continent, calling code)

    @property
    def correct(self) -> bool:
        if self.wrong or not self.right:
            return False
        return len(self.right) == 1 or not self.single


@dataclass(frozen=True)
class _Word:
    low: str
    raw: str
    clause: int


@dataclass(frozen=True)
class _Spelling:
    words: tuple[str, ...]
    values: frozenset[str]  # the normalised KB values it spells
    case: str  # "upper": only ever an all-capitals code; "title": a city, written capitalised


# (id of the KB, field or "capital:<code>") → (the KB, its index): the KB is kept to check the id.
_INDEX: dict[tuple[int, str], tuple[KnowledgeBase, dict[str, list[_Spelling]]]] = {}


def read_short(kb: KnowledgeBase, country: Country, name: str, text: str) -> Reading:
    """What `text` asserts about field `name` of `country`, every KB value a candidate."""
    words = _words(text)
    groups = _groups(country, name)
    right: dict[int, str] = {}
    wrong: dict[str, None] = {}
    negated: dict[str, None] = {}
    mentions = _mentions(words, _index(kb, name, country if name == "capital" else None))
    # The country's own name is the subject of "The capital of Hong Kong is Victoria", and
    # the answer only where nothing else is named ("Singapore").
    own = {tuple(norm(n).split()) for n in (country.name, *country.aliases)}
    named = [m for m in mentions if tuple(w.low for w in words[m[0]:m[1]]) not in own]
    for i, j, values in named or mentions:
        group = next((g for g, (label, members) in enumerate(groups) if values & members), None)
        label = groups[group][0] if group is not None else min(values)
        if _negated(words, i, j):
            negated[label] = None
        elif group is not None:
            right.setdefault(group, label)
        else:
            wrong[label] = None
    return Reading(tuple(right.values()), tuple(wrong), tuple(negated), name not in LIST_FIELDS)


def score_short(kb: KnowledgeBase, country: Country | None, name: str, answer: str) -> dict[str, Any]:
    """The verdict on a short answer to "what is field `name` of `country`?", read from its
    first line (shared by the factuality probe and `llmassay factcheck`): `exact_match`
    (a spelling of an accepted value after normalisation), `correct` (that, or one value of
    the field asserted and accepted: `read_short`), `verdict` (supported / contradicted, or
    not_in_kb for an abstention or a fact the KB lacks), `evidence` (the passage id)."""
    first = answer.strip().split("\n")[0]
    entry: dict[str, Any] = {"answer": answer, "abstained": abstains(first)}
    if country is None or not country.values.get(name):
        entry.update(exact_match=False, correct=False, verdict="not_in_kb", evidence=None)
        return entry
    right = accepted(country, name)
    fact = verify(kb, country, name, first)
    reading = read_short(kb, country, name, first)
    entry["exact_match"] = fact.verdict == "supported" or any(normalise_answer(first) == normalise_answer(a)
                                                              for a in right)
    # One value of the field asserted, and accepted (all of them for a list field): a hedge,
    # a list of values or "not Paris; Lyon" is not correct however it mentions Paris.
    entry["correct"] = entry["exact_match"] or (not entry["abstained"] and reading.correct)
    entry["asserted"] = {"right": list(reading.right), "wrong": list(reading.wrong)}
    entry["verdict"] = ("supported" if entry["correct"] else "not_in_kb" if entry["abstained"] else "contradicted")
    entry["evidence"] = fact.evidence
    return entry


def _words(text: str) -> list[_Word]:
    """The answer's words (accents folded, "St" read as "saint", as `norm` does), each with
    the number of the clause it stands in (after , ; : ! ? ". " or "but")."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out: list[_Word] = []
    clause, last = 0, 0
    for m in _WORD.finditer(folded):
        low = m.group().lower()
        clause += bool(_CLAUSE_MARK.search(folded[last:m.start()])) + (low in _CLAUSE_WORDS)
        out.append(_Word("saint" if low == "st" else low, m.group(), clause))
        last = m.end()
    return out


def _index(kb: KnowledgeBase, name: str, country: Country | None = None) -> dict[str, list[_Spelling]]:
    """Every spelling of every country's value of the field, by its first word, plus the
    other cities of `country` when given (built once per KB, field and country)."""
    key = (id(kb), name if country is None else f"{name}:{country.code}")
    cached = _INDEX.get(key)
    if cached is not None and cached[0] is kb:
        return cached[1]
    if country is not None:
        _INDEX[key] = (kb, _with_cities(_index(kb, name), country))
        return _INDEX[key][1]
    values: dict[tuple[str, ...], set[str]] = {}
    code: dict[tuple[str, ...], bool] = {}
    for c in kb.countries.values():
        for value, spelling in c.spelled(name):
            words = tuple(norm(spelling).split())
            if words:
                values.setdefault(words, set()).add(norm(value))
                code[words] = code.get(words, True) and spelling.isalpha() and spelling.isupper()
    index: dict[str, list[_Spelling]] = {}
    for words, vs in values.items():
        index.setdefault(words[0], []).append(_Spelling(words, frozenset(vs), "upper" if code[words] else ""))
    _INDEX[key] = (kb, index)
    return index


def _with_cities(index: dict[str, list[_Spelling]], country: Country) -> dict[str, list[_Spelling]]:
    """The capital index plus the country's other cities (not its own name, not a name the
    index already holds)."""
    from llmassay.factuality.aliases import other_cities

    own = {norm(n) for n in (country.name, *country.aliases)}
    out = {k: list(v) for k, v in index.items()}
    capitals = sorted({str(v) for v in (country.values.get("capital") or {}).values()})
    for city in other_cities(country.code, capitals):
        words = tuple(norm(city).split())
        if words and norm(city) not in own and not any(sp.words == words for sp in out.get(words[0], ())):
            out.setdefault(words[0], []).append(_Spelling(words, frozenset({norm(city)}), "title"))
    return out


def _groups(country: Country, name: str) -> list[tuple[str, set[str]]]:
    """The country's accepted values, those sharing a spelling merged into one value (the
    sources' "Kyiv" and "Kiev" are one capital): (label, normalised values)."""
    groups: list[tuple[str, set[str], set[str]]] = []  # label, values, spellings
    for value, spelling in country.spelled(name):
        v, s = norm(value), norm(spelling)
        hit = [g for g in groups if v in g[1] or s in g[2]]
        merged = (hit[0][0] if hit else value, {v}.union(*(g[1] for g in hit)), {s}.union(*(g[2] for g in hit)))
        groups = [g for g in groups if g not in hit] + [merged]
    return [(label, members) for label, members, _ in groups]


def _mentions(words: list[_Word], index: dict[str, list[_Spelling]]) -> list[tuple[int, int, frozenset[str]]]:
    """(start, end, values) of each spelling found, the longest first: a name inside a
    longer one ("Kingston" in "New Kingston") is part of that one."""
    lows = [w.low for w in words]
    hits = []
    for i, w in enumerate(words):
        for sp in index.get(w.low, ()):
            j = i + len(sp.words)
            if tuple(lows[i:j]) == sp.words and _cased(words[i:j], sp.case):
                hits.append((i, j, sp.values))
    taken: list[tuple[int, int, frozenset[str]]] = []
    for i, j, vs in sorted(hits, key=lambda h: (h[0] - h[1], h[0])):
        if all(j <= a or i >= b for a, b, _ in taken):
            taken.append((i, j, vs))
    return sorted(taken, key=lambda h: h[0])


def _cased(words: list[_Word], case: str) -> bool:
    if case == "upper":
        return all(w.raw.isupper() for w in words)
    return case != "title" or words[0].raw[:1].isupper()


def _negated(words: list[_Word], i: int, j: int) -> bool:
    clause = words[i].clause
    before = [w.low for w in words[max(0, i - WINDOW):i] if w.clause == clause]
    pairs = set(zip(before, before[1:]))
    if _NEGATIONS.intersection(before) or pairs & _NEGATION_PAIRS or any(a[-1:] == "n" and b == "t" for a, b in pairs):
        return True  # "not Paris", "rather than Paris", "isn't Paris"
    after = [w.low for w in words[j:j + 2] if w.clause == words[j - 1].clause]
    return len(after) == 2 and after[0] in _COPULAS and after[1] in ("not", "never", "t")  # "Paris is not …"

