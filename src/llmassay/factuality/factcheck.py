"""`llmassay factcheck`: verify answers someone else produced, no generation.

Each line of the answers file is `{"id": …, "answer": …}` with an optional `"question"`,
`"country"` (name or ISO code; otherwise the first country the question, then the answer,
names) and `"field"` (one of the KB's fields; otherwise the one the question asks about:
"What is the capital of Peru?" asks for `capital`). A JSON object answer goes the structured
path (each field one fact), text the free path (sentences, every field pattern match one
claim, each (field, value) once; a sentence no pattern reads is `unverified`, reported beside
precision as in the probe). A text answer of which no sentence is read, to a question whose
field and country are known ("Lima" to "What is the capital of Peru?"), goes the short path:
the probe's short-answer verdict (`answer.score_short`) as one fact of that field. Malformed
lines are one-line errors naming file and line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from llmassay.factuality.answer import score_short
from llmassay.factuality.kb import FIELDS, Country, KnowledgeBase, norm
from llmassay.factuality.scores import answer_metrics
from llmassay.factuality.verify import Fact, counts, profile_facts, text_facts
from llmassay.jsonlines import json_lines
from llmassay.metrics import bootstrap_mean, proportion
from llmassay.types import LlmassayError, Metric


def read_answers(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LlmassayError(f"--answers: cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise LlmassayError(f"--answers: {path} is not valid UTF-8") from None
    out, seen = [], set()
    for where, _, record in json_lines(text, path):
        if not isinstance(record, dict):
            raise LlmassayError(f"{where}: each line must be a JSON object with 'id' and 'answer'")
        for key in ("id", "answer"):
            if key not in record:
                raise LlmassayError(f"{where}: missing field '{key}'")
        if not isinstance(record["answer"], (str, dict)):
            raise LlmassayError(f"{where}: field 'answer' must be a string or a JSON object")
        for key in ("question", "country", "field"):
            if key in record and not isinstance(record[key], str):
                raise LlmassayError(f"{where}: field '{key}' must be a string")
        if "field" in record and record["field"] not in FIELDS:
            raise LlmassayError(f"{where}: field 'field': '{record['field']}' is not one of {', '.join(FIELDS)}")
        if str(record["id"]) in seen:
            raise LlmassayError(f"{where}: duplicate id '{record['id']}'")
        seen.add(str(record["id"]))
        out.append({**record, "_where": where})
    if not out:
        raise LlmassayError(f"--answers: {path} has no answers")
    return out


# What a question asks about, by its words: "What is the capital of Peru?" → capital.
_ASKS = {
    "capital": re.compile(r"\bcapital\b"),
    "continent": re.compile(r"\bcontinent\b"),
    "currencies": re.compile(r"\bcurrenc(?:y|ies)\b"),
    "languages": re.compile(r"\blanguages?\b"),
    "population": re.compile(r"\bpopulation\b|\bhow many (?:people|inhabitants)\b"),
    "area_km2": re.compile(r"\barea\b|\bhow (?:large|big)\b|\bsquare (?:kilomet|km)"),
    "neighbours": re.compile(r"\bborders?\b|\bbordering\b|\bneighbou?r"),
    "calling_code": re.compile(r"\b(?:calling|dialling|dialing|telephone|phone) code\b"),
}


def asked_field(question: str) -> str | None:
    """The one KB field the question names; None for none or several ("the area of the capital")."""
    text = question.lower()
    named = [name for name, pattern in _ASKS.items() if pattern.search(text)]
    return named[0] if len(named) == 1 else None


def find_country(kb: KnowledgeBase, *texts: str) -> Country | None:
    """The first country (longest name first, at the earliest position) the texts name."""
    names = sorted(kb.by_name, key=len, reverse=True)
    for text in texts:
        padded = f" {norm(text)} "
        hits = [(padded.find(f" {n} "), -len(n), n) for n in names if n and f" {n} " in padded]
        if hits:
            return kb.countries[kb.by_name[min(hits)[2]]]
    return None


def check_answer(kb: KnowledgeBase, record: dict[str, Any]) -> dict[str, Any]:
    answer = record["answer"]
    if isinstance(answer, str):
        try:
            parsed = json.loads(answer)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            answer = parsed
    question = str(record.get("question", ""))
    asked: Country | None
    country: Country | None
    if record.get("country"):
        country = kb.country(record["country"])
        if country is None:
            raise LlmassayError(f"{record['_where']}: field 'country': unknown country '{record['country']}'")
        asked = country
    else:
        asked = find_country(kb, question)  # the country the question is about, if it names one
        country = asked or find_country(kb, answer if isinstance(answer, str) else json.dumps(answer))
    field = record.get("field") or asked_field(question)
    rest: list[str] = []
    if isinstance(answer, dict):
        path, facts = "structured", profile_facts(kb, country, answer)
    else:
        path = "free"
        facts, rest = text_facts(kb, country, answer)
        if not facts and field and asked is not None:  # "Lima" to "What is the capital of Peru?"
            path, facts, rest = "short", _short_fact(kb, asked, field, answer), []
    return {"id": record["id"], "country": country.code if country else None, "path": path,
            "facts": [f.as_dict() for f in facts], "unverified": rest, "counts": counts(facts)}


def _short_fact(kb: KnowledgeBase, country: Country, field: str, answer: str) -> list[Fact]:
    """The probe's short-answer verdict as one fact (none when the answer abstains)."""
    entry = score_short(kb, country, field, answer)
    if entry["abstained"]:
        return []
    first = answer.strip().split("\n")[0]
    return [Fact(field, first, entry["verdict"], entry["evidence"], first)]


def summarise(results: list[dict[str, Any]], seed: int = 0) -> dict[str, Metric]:
    """The probe's figures (`factuality.scores`: precision over read facts, the unverified
    share beside it, abstention), plus the not-in-KB rate and the share with no read fact."""
    answered = [r["counts"] for r in results if sum(r["counts"].values())]
    return {
        **answer_metrics(results, seed),
        "not_in_kb_rate": bootstrap_mean([c["not_in_kb"] / sum(c.values()) for c in answered], seed),
        "no_checkable_fact": proportion([not sum(r["counts"].values()) for r in results]),
    }
