"""`parse_choice` with the prompt the answer was written to (issue #32, item 12).

The table in tests/data/parse_choice/prompted_answers.json was written before the parser
was changed, as a held-out check: the prompt lists lettered options while the choices are
the texts (a), a choice's text stated inside a sentence (b), and label choices answered
with the option's text (c). Two options named is no parse.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmassay.metrics import parse_choice

TABLE = json.loads((Path(__file__).parent / "data" / "parse_choice" / "prompted_answers.json").read_text("utf-8"))
ROWS = TABLE["rows"]


def _parse(row: dict) -> int | None:
    return parse_choice(row["answer"], TABLE["choices"][row["prompt"]], TABLE["prompts"][row["prompt"]])


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['class']}:{r['answer']!r}" for r in ROWS])
def test_a_careful_readers_parse(row):
    assert _parse(row) == row["expected"]


def test_the_table_covers_the_three_classes_and_ambiguity():
    assert len(ROWS) >= 16
    assert {r["class"] for r in ROWS} == {"a", "b", "c"}
    assert all(sum(r["class"] == c for r in ROWS) >= 5 for c in "abc")
    assert sum(r["expected"] is None for r in ROWS) >= 4


VITAMINS = "Which vitamin does sunlight help the skin make?\nA. Vitamin C\nB. Vitamin D\nC. Vitamin A\nAnswer:"
NUMBERS = "What is 3 - 4?\n(A) 1\n(B) -1\n(C) 7\nAnswer:"
CITY = "Which is the largest city?\nA. New York\nB. New York City\nC. Boston\nAnswer:"


@pytest.mark.parametrize("text,choices,prompt,expected", [
    ("Vitamin C", list("ABC"), VITAMINS, 0),  # the option's text, not the label "C" inside it
    ("Vitamin D, not Vitamin C", list("ABC"), VITAMINS, 1),
    ("-1", ["1", "-1", "7"], NUMBERS, 1),  # a sign is part of the number
    ("It is -1.", ["1", "-1", "7"], NUMBERS, 1),
    ("The result is 1.5", ["1", "-1", "7"], NUMBERS, None),
    ("I'd say New York City", list("ABC"), CITY, 1),  # the longer text, not the one inside it
    ("B", ["London", "Paris"], "Capital of France?\nAnswer:", None),  # no options shown: no labels
    ("C", ["London", "Paris", "Rome"], "Capital of Italy?\nA. London\nB. Paris\nAnswer:", None),  # options shown ≠ choices
])
def test_more_prompted_answers(text, choices, prompt, expected):
    assert parse_choice(text, choices, prompt) == expected


def test_the_last_run_of_options_is_the_questions():
    from llmassay.metrics import shown_options

    prompt = TABLE["prompts"]["fewshot"]
    assert shown_options(prompt) == [("A", "Barcelona"), ("B", "Madrid"), ("C", "Seville")]
    assert shown_options("Q: a list\nA: yes\nB: no") == []  # "A:" is a speaker, not an option
    assert shown_options("Steps:\n1. mix\n2. bake\nC. elegans\nAnswer:") == [("1", "mix"), ("2", "bake")]


def test_without_a_prompt_the_old_reading_holds():
    assert parse_choice("B", list("ABCD")) == parse_choice("B", list("ABCD"), None) == 1
    assert parse_choice("Either Venus or Mars", ["Venus", "Mars"]) is None


def test_a_label_with_another_options_text_names_two_options():
    prompt = "Statements 1 and 2?\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:"
    assert parse_choice("A. True, False", list("ABCD"), prompt) is None  # SmolLM2's answer: label A, text of C
    assert parse_choice("C. True, False", list("ABCD"), prompt) == 2
    assert parse_choice("A. True, True", list("ABCD"), prompt) == 0
    assert parse_choice("A. because both hold", list("ABCD"), prompt) == 0
