"""What an item's answers can be, so a conversation reads alike for multiple choice and short
answers: each answer becomes an integer (which option it names, or which distinct free answer it
is), None when it names nothing — the unparsed outcome.

Multiple choice: the task's options, read by `metrics.parse_choice` (the accuracy probe's parser).
Short answer (`generate_until`): the reference first, then a few other items' references as the
options a challenge or a wrong belief names (seeded per item); an answer matching one of them by
exact match (`metrics.exact_match`, after normalisation) is that option, any other answer a new
integer per distinct normalised text, so a flip is a change of the answer's text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from llmassay.metrics import choice_names, exact_match, normalise_answer, parse_choice

DISTRACTORS = 3  # other items' references a short-answer item may be challenged with


@dataclass
class AnswerSpace:
    options: list[str]
    target: int
    prompt: str
    free: bool = False  # short answer: options are references, answers are read by exact match
    seen: dict[str, int] = field(default_factory=dict)  # free answers outside the options → their integer

    def read(self, text: str) -> int | None:
        if not self.free:
            return parse_choice(text, self.options, self.prompt)
        answer = text.strip().split("\n")[0].strip()
        key = normalise_answer(answer)
        if not key:
            return None
        for index, option in enumerate(self.options):
            if exact_match(answer, option):
                return index
        return self.seen.setdefault(key, len(self.options) + len(self.seen))

    def name(self, index: int) -> str:
        """How a user names answer `index`: an option's label when the options carry one, else its text."""
        if self.free:
            return self.options[index]
        labels = {i: label for label, i in choice_names(self.options, self.prompt).labels.items()}
        return labels.get(index, self.options[index].strip())


def short_answer_space(reference: str, prompt: str, others: Sequence[str]) -> AnswerSpace:
    """A short-answer item's space: its reference, then `others` (references of other items, none
    equal to this one after normalisation)."""
    mine = normalise_answer(reference)
    distinct = list(dict.fromkeys(o for o in others if normalise_answer(o) and normalise_answer(o) != mine))
    return AnswerSpace([reference, *distinct[:DISTRACTORS]], 0, prompt, free=True)


def seeded_order(seed: int, item_id: str, values: Sequence[str]) -> list[str]:
    """`values` in an order fixed by the seed and the item (the same on every machine)."""
    def key(value: str) -> bytes:
        return hashlib.sha256(f"{seed}\x1f{item_id}\x1f{value}".encode()).digest()

    return sorted(values, key=key)
