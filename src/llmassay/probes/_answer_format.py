"""What a chat model is told about the form of its answer, so that the parser can read it.

Asked the bare "…\\nAnswer:" in a chat turn, an instruct model explains first and is cut at
the few answer tokens a task allows (SmolLM2 on arith_sample: "To calculate -5 / 5, we need
to perform", whose first number, -5, is then read as its answer). lm-eval's
`--apply_chat_template` sends the bare prompt; the strategies probe and the accuracy probe
(`chat_format=instruct`) put one line before it saying what to reply with, in the form the
task's parser reads: a label for `parse_choice` when the options are labelled, the number
for an exact match against a number, else the answer alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmassay.metrics import choice_names, normalise_answer, shown_options

if TYPE_CHECKING:
    from llmassay.tasks.loader import Task

ANSWER_ONLY = "Reply with the answer only."
LETTER_ONLY = "Reply with the letter of the correct option only."
OPTION_NUMBER_ONLY = "Reply with the number of the correct option only."
NUMBER_ONLY = "Reply with the number only."
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def instructed(prompt: str, instruction: str) -> str:
    """The user's turn: the instruction, a blank line, then the task's prompt unchanged."""
    return f"{instruction}\n\n{prompt}" if instruction else prompt


def is_number(text: str) -> bool:
    return NUMBER.fullmatch(normalise_answer(str(text))) is not None


def choice_instruction(choices: Sequence[str], prompt: str) -> str:
    """For `parse_choice`: the label when the options carry one (letter choices, or options
    the prompt lists under letters or numbers), else the answer itself (the option's text)."""
    kind = choice_names(choices, prompt).kind
    if kind == "letter":
        return LETTER_ONLY
    if kind == "digit" and shown_options(prompt):  # digits not shown as labels are answers
        return OPTION_NUMBER_ONLY
    return ANSWER_ONLY


def generation_instruction(task: Task, references: Sequence[str]) -> str:
    """For an exact match of the whole answer: the number alone when every reference is a
    number, else the answer alone. "" when the task's own filters or scoring read the answer
    (a regex such as GSM8K's "#### N"): the task's prompt then says the format."""
    scoring = task.scoring
    if scoring is not None and (scoring.pipelines or scoring.process_results or scoring.metrics != ("exact_match",)):
        return ""
    return NUMBER_ONLY if references and all(is_number(r) for r in references) else ANSWER_ONLY
