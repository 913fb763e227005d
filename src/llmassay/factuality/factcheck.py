"""`llmassay factcheck`: verify answers someone else produced, no generation.

Each line of the answers file is `{"id": …, "answer": …}` with an optional `"question"` and
`"country"` (name or ISO code; otherwise the first country the question, then the answer,
names). A JSON object answer goes the structured path (each field one fact), text the free
path (sentences, every field pattern match one claim, each (field, value) once; a sentence no
pattern reads is `unverified`, reported beside precision as in the probe). Malformed lines
are one-line errors naming file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmassay.jsonlines import json_lines
from llmassay.factuality.kb import Country, KnowledgeBase, norm
from llmassay.factuality.scores import answer_metrics
from llmassay.factuality.verify import counts, profile_facts, text_facts
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
        for key in ("question", "country"):
            if key in record and not isinstance(record[key], str):
                raise LlmassayError(f"{where}: field '{key}' must be a string")
        if str(record["id"]) in seen:
            raise LlmassayError(f"{where}: duplicate id '{record['id']}'")
        seen.add(str(record["id"]))
        out.append({**record, "_where": where})
    if not out:
        raise LlmassayError(f"--answers: {path} has no answers")
    return out


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
    if record.get("country"):
        country = kb.country(record["country"])
        if country is None:
            raise LlmassayError(f"{record['_where']}: field 'country': unknown country '{record['country']}'")
    else:
        country = find_country(kb, str(record.get("question", "")),
                               answer if isinstance(answer, str) else json.dumps(answer))
    if isinstance(answer, dict):
        path, facts, rest = "structured", profile_facts(kb, country, answer), []
    else:
        path = "free"
        facts, rest = text_facts(kb, country, answer)
    return {"id": record["id"], "country": country.code if country else None, "path": path,
            "facts": [f.as_dict() for f in facts], "unverified": rest, "counts": counts(facts)}


def summarise(results: list[dict[str, Any]], seed: int = 0) -> dict[str, Metric]:
    """The probe's figures (`factuality.scores`: precision over read facts, the unverified
    share beside it, abstention), plus the not-in-KB rate and the share with no read fact."""
    answered = [r["counts"] for r in results if sum(r["counts"].values())]
    return {
        **answer_metrics(results, seed),
        "not_in_kb_rate": bootstrap_mean([c["not_in_kb"] / sum(c.values()) for c in answered], seed),
        "no_checkable_fact": proportion([not sum(r["counts"].values()) for r in results]),
    }
