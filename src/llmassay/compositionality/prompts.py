"""The three prompting modes Press et al. (2022) compare, as few-shot transcripts, and how
each mode's final answer is read.

- `direct`: "Question: …\\nAnswer: <answer>" exemplars; the answer is the first line. The
  single-hop sub-questions are asked this way in every mode (as in the paper).
- `cot` (chain of thought): the same exemplars answered with their reasoning in prose,
  ending "So the final answer is: <answer>".
- `self_ask`: the paper's format — "Are follow up questions needed here: Yes.", then
  "Follow up: …" / "Intermediate answer: …" pairs, then "So the final answer is: …". The
  model answers its own follow-ups (no search engine).

The exemplars are the same three questions in every mode, written here before any run and
about nothing in the country KB (teachers of philosophers, a playwright's birth year, a
gas's symbol), so no exemplar gives an item's answer away. A reasoning mode's answer is the
text after the last "So the final answer is:" up to the end of its line; without that line
the item is unparsed and counts as a miss (`parsed` reports how often).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MODES = ("direct", "cot", "self_ask")
FINAL = "So the final answer is:"
SELF_ASK_CUE = "Are follow up questions needed here:"
DIRECT_STOP = ("\n",)
REASONING_STOP = ("\nQuestion:", "\n\n")


@dataclass(frozen=True)
class Exemplar:
    question: str
    follow_ups: tuple[tuple[str, str], ...]  # (follow-up question, intermediate answer)
    reasoning: str
    answer: str


EXEMPLARS = (
    Exemplar("Who was the teacher of the teacher of Aristotle?",
             (("Who was the teacher of Aristotle?", "Plato"), ("Who was the teacher of Plato?", "Socrates")),
             "Aristotle was taught by Plato, and Plato was taught by Socrates.", "Socrates"),
    Exemplar("In which year was the author of Hamlet born?",
             (("Who wrote Hamlet?", "William Shakespeare"), ("In which year was William Shakespeare born?", "1564")),
             "Hamlet was written by William Shakespeare, who was born in 1564.", "1564"),
    Exemplar("What is the chemical symbol of the most common gas in the air?",
             (("What is the most common gas in the air?", "Nitrogen"),
              ("What is the chemical symbol of nitrogen?", "N")),
             "The most common gas in the air is nitrogen, and its chemical symbol is N.", "N"),
)


def _shot(e: Exemplar, mode: str) -> str:
    if mode == "direct":
        return f"Question: {e.question}\nAnswer: {e.answer}"
    if mode == "cot":
        return f"Question: {e.question}\nAnswer: {e.reasoning} {FINAL} {e.answer}"
    steps = "".join(f"Follow up: {q}\nIntermediate answer: {a}\n" for q, a in e.follow_ups)
    return f"Question: {e.question}\n{SELF_ASK_CUE} Yes.\n{steps}{FINAL} {e.answer}"


def prompt(question: str, mode: str) -> str:
    """The few-shot transcript for `question` in `mode`, ending where the model writes."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    shots = "\n\n".join(_shot(e, mode) for e in EXEMPLARS)
    tail = f"Question: {question}\n{SELF_ASK_CUE}" if mode == "self_ask" else f"Question: {question}\nAnswer:"
    return f"{shots}\n\n{tail}"


def stop(mode: str) -> tuple[str, ...]:
    return DIRECT_STOP if mode == "direct" else REASONING_STOP


_FINAL = re.compile(r"so the final answer is\s*:?[ \t]*([^\n]*)", re.IGNORECASE)
_FOLLOW = re.compile(r"follow up:\s*([^\n]*)\n\s*intermediate answer:\s*([^\n]*)", re.IGNORECASE)


def final_answer(text: str, mode: str) -> str | None:
    """The answer a generation gives in `mode`: the first non-empty line (direct), else what
    follows the last "So the final answer is:" on its line, without a closing full stop.
    None when a reasoning mode never says it, or says nothing after it."""
    if mode == "direct":
        line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
        return line or None
    found = [m.group(1).strip() for m in _FINAL.finditer(text)]
    answer = found[-1].rstrip(". ").strip() if found else ""
    return answer or None


def follow_ups(text: str) -> list[tuple[str, str]]:
    """The (follow-up, intermediate answer) pairs a self-ask generation wrote."""
    return [(q.strip(), a.strip()) for q, a in _FOLLOW.findall(text)]
