"""`parse_choice` on written answers with a known intended reading (issue #16, item 4).

Each row is an answer a model could write and the option a careful reader would take
from it; None where the answer names no valid option. The parse feeds `acc_gen` and the
brittleness flip rates, so a misread here is a measurement error there.
"""

from __future__ import annotations

import pytest

from llmassay.metrics import parse_choice

ABCD = ["A", "B", "C", "D"]
NUM4 = ["1", "2", "3", "4"]
A_TO_J = list("ABCDEFGHIJ")
NUM10 = [str(i) for i in range(1, 11)]
CITIES = ["London", "Paris"]
NEW_YORK = ["New York", "New York City", "Boston"]
TRUE_FALSE = ["True", "False"]

CASES = [
    # bare upper-case letters, with the usual wrappers
    ("B", ABCD, 1),
    (" B", ABCD, 1),
    ("\nC\n", ABCD, 2),
    ("(C)", ABCD, 2),
    ("D.", ABCD, 3),
    ("B)", ABCD, 1),
    ("[A]", ABCD, 0),
    ("**C**", ABCD, 2),
    ("B, since Paris is the capital", ABCD, 1),
    ("A is correct", ABCD, 0),
    # "answer is" / "answer:" forms win over any other label, and may be lower case
    ("The answer is A", ABCD, 0),
    ("I think the answer is B", ABCD, 1),
    ("Answer: D", ABCD, 3),
    ("answer: (b)", ABCD, 1),
    ("answer: 'B'", ABCD, 1),
    ("The correct answer is: C.", ABCD, 2),
    ("The answer is option B", ABCD, 1),
    ("the answer is c because", ABCD, 2),
    ("The correct option is d", ABCD, 3),
    ("B? No wait, the answer is C", ABCD, 2),
    ("The answer is a tricky one: D", ABCD, 3),  # "a" is the article here
    # "A" and "I" as English words are not labels
    ("a lot of people say C", ABCD, 2),
    ("A lot of people say C", ABCD, 2),
    ("I'm not sure, but D", ABCD, 3),
    ("I think it is J", A_TO_J, 9),
    ("I", A_TO_J, 8),
    # lower-case bare letters are prose, not answers
    ("b", ABCD, None),
    ("maybe c", ABCD, None),
    # word boundaries: a letter inside a word, an abbreviation or a compound is not a label
    ("Both are wrong", ABCD, None),
    ("Apple", ABCD, None),
    ("It's B-cells", ABCD, None),
    ("D.C. is in region B", ABCD, 1),
    # the first label that is a valid choice
    ("E", ABCD, None),
    ("The answer is E", ABCD, None),
    ("E or B", ABCD, 1),
    ("", ABCD, None),
    ("I'm not sure", ABCD, None),
    # digit labels (brittleness's labels_numeric) parse like letters
    ("2", NUM4, 1),
    ("(2)", NUM4, 1),
    ("answer is 2", NUM4, 1),
    ("The answer is (3).", NUM4, 2),
    ("3. Paris", NUM4, 2),
    ("Answer: 4", NUM4, 3),
    ("2.5", NUM4, None),
    ("12", NUM4, None),
    ("5", NUM4, None),
    ("B", NUM4, None),
    ("10", NUM10, 9),
    # choices given as full text: a leading match ending at a word boundary
    ("Londonderry", CITIES, None),
    ("London, of course", CITIES, 0),
    ("The answer is Paris.", CITIES, 1),
    ('"Paris"', CITIES, 1),
    ('The answer is "Paris"', CITIES, 1),
    ("answer is London. Paris is wrong", CITIES, 0),
    ("Chicago", CITIES, None),
    (" New York City, obviously", NEW_YORK, 1),
    ("New Yorker", NEW_YORK, None),
    ("Answer: true", TRUE_FALSE, 0),
    ("False.", TRUE_FALSE, 1),
    ("Falsehood", TRUE_FALSE, None),
]


@pytest.mark.parametrize("text,choices,expected", CASES, ids=[repr(c[0]) for c in CASES])
def test_parse_choice(text, choices, expected):
    assert parse_choice(text, choices) == expected


def test_the_table_is_large_and_covers_every_kind_of_answer():
    assert len(CASES) >= 40
    assert {id(c[1]) for c in CASES} >= {id(ABCD), id(NUM4), id(CITIES)}
    assert sum(c[2] is None for c in CASES) >= 10  # unparsable answers are half the point
