"""Generate the bundled `position_sample` task: 40 short documents about fictional
villages, each with one question whose answer only its own document holds, for
`--probe position` (lost in the middle: the gold document among the others' documents).

The facts are invented (so a closed-book answer is a guess, and the closed-book baseline
shows how often guessing works); every document has the same shape, so the others are
plausible distractors. Seed 20261129; CC0-1.0, written for llmassay.
Run: PYTHONPATH=src python scripts/build_position_sample.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/llmassay/tasks/data/position_sample/position_sample.jsonl"
SEED, SIZE = 20261129, 40

PLACES = ("Ashcombe", "Brackenford", "Caldmoor", "Dunleigh", "Elderwick", "Fallowmere", "Glenrise", "Harrowby",
          "Ivydale", "Kestrelton", "Larkhollow", "Marrowick", "Netherby", "Oakhurst", "Pennywell", "Quenby",
          "Rookstead", "Saltmarsh", "Thornbury", "Upwold", "Velmoor", "Wrenfield", "Yarrowby", "Alderholt",
          "Birchcombe", "Coldharbour", "Dovecote", "Emberly", "Foxhollow", "Greywater", "Hawkridge", "Inglenook",
          "Juniper Cross", "Kingsmere", "Lowbridge", "Millbrook", "Northwold", "Otterburn", "Pebblesworth", "Ravensholt")
NAMES = ("Agnes Hale", "Bertram Cole", "Cecily Marsh", "Desmond Pike", "Eleanor Frost", "Fergus Wynn", "Gwendolyn Shaw",
         "Horace Blythe", "Imogen Reed", "Jasper Thorne", "Lavinia Crane", "Mortimer Ash", "Nell Harper", "Oswin Lark",
         "Prudence Vane", "Roderick Fell", "Sybil Drake", "Tobias Quill", "Ursula Penn", "Walter Briggs")
RIVERS = ("Amble", "Brent", "Cray", "Dove", "Esk", "Frome", "Glen", "Hull", "Isle", "Kennet", "Lune", "Mole",
          "Nene", "Ouse", "Parrett", "Rye", "Swale", "Tamar", "Ure", "Wey")
TRADES = ("rope", "cheese", "lace", "pottery", "cider", "wool", "candles", "barrels", "slate", "honey")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
QUESTIONS = (
    ("founder", "Who founded the village of {place}?"),
    ("year", "In which year was the bell of {place} cast?"),
    ("river", "On which river does {place} stand?"),
    ("trade", "What is {place} known for making?"),
    ("day", "On which day is the market held in {place}?"),
)


def document(place: str, facts: dict[str, str]) -> str:
    return (f"{place} is a small village on the River {facts['river']}. It was founded by {facts['founder']}, "
            f"whose house still stands by the green. The bell of its church was cast in {facts['year']}. "
            f"The village is known for making {facts['trade']}, and its market is held every {facts['day']}.")


def main() -> None:
    rng = random.Random(SEED)
    answers: set[tuple[str, str]] = set()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w") as f:
        for i, place in enumerate(PLACES[:SIZE]):
            facts = {"founder": rng.choice(NAMES), "year": str(rng.randrange(1420, 1890)), "river": rng.choice(RIVERS),
                     "trade": rng.choice(TRADES), "day": rng.choice(DAYS)}
            field, question = QUESTIONS[i % len(QUESTIONS)]
            answers.add((field, facts[field]))
            row = {"id": f"position_{i}", "passage": document(place, facts),
                   "question": question.format(place=place), "answer": facts[field], "field": field}
            f.write(json.dumps(row) + "\n")
    print(f"{SIZE} documents → {OUT}")


if __name__ == "__main__":
    main()
