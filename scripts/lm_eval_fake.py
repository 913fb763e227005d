"""The scripted model both sides of the lm-eval agreement test answer with (pure Python).

`scripts/lm_eval_reference.py` runs lm-eval 0.4.13's own evaluator with this model, and
tests/test_lm_eval_compat.py runs llmassay with it: equal prompts and equal metrics then
mean the task layers agree. Log-likelihoods are a hash of the request; generations answer
the last question in the prompt right, in a varied surface form, or wrong, by a hash, so
filters, `exact_match` options and list targets all decide some scores.
"""

from __future__ import annotations

import hashlib
import re

ANSWERS = {  # question stem (lower case) → right answer, as in scripts/build_lm_eval_testdata.py
    "which planet is closest to the sun": "Mercury",
    "what gas do plants take in for photosynthesis": "carbon dioxide",
    "what is frozen water called": "ice",
    "how many legs does a spider have": "eight",
    "which organ pumps blood": "the heart",
    "what force pulls objects toward earth": "gravity",
    "which metal is liquid at room temperature": "mercury",
    "what is the boiling point of water at sea level in celsius": "100",
    "which animal is a mammal": "a whale",
    "what do bees make": "honey",
}


def digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def score(context: str, continuation: str) -> float:
    """log P(continuation | context): arbitrary but fixed."""
    return -(digest(context, continuation) % 10_000) / 1_000


def greedy(context: str, continuation: str) -> bool:
    """Whether greedy decoding would write the continuation: arbitrary but fixed."""
    return digest("greedy", context, continuation) % 3 == 0


ROLLING_PREFIX, ROLLING_WINDOW = 256, 48  # a byte "tokenizer", and a window short enough to roll


def rolling_tokens(text: str) -> tuple[list[int], int, int]:
    """The fake tokenizer for rolling log-likelihood: UTF-8 bytes, prefix token, window."""
    return list(text.encode("utf-8")), ROLLING_PREFIX, ROLLING_WINDOW


def score_tokens(context: list[int] | tuple[int, ...], continuation: list[int] | tuple[int, ...]) -> float:
    """log P(continuation tokens | context tokens) of one window: arbitrary but fixed."""
    h = digest(",".join(map(str, context)), ",".join(map(str, continuation)))
    return -len(continuation) * (0.5 + (h % 1000) / 1000)


def answer(prompt: str, repeat: int = 0) -> str:
    """A generation for the prompt's last question; `repeat` numbers a task's `repeats`
    (gsm8k-cot-self-consistency): sampled answers, cycling through the variants."""
    h = digest(prompt) % 6
    if prompt.endswith("Galician sentence:"):  # translate the last sentence, knowing some words
        from build_lm_eval_testdata import GALICIAN

        words = prompt.rsplit("English sentence: ", 1)[-1].split("\n")[0].split()
        return " " + " ".join(GALICIAN.get(w, w) if digest(w, prompt) % 4 else w for w in words)
    if prompt.endswith("The best answer is"):  # a gen_prefix (llama3 arc_challenge): a letter, loosely written
        return [" A.", " B", " c", " D.\n", "  A", " the B"][h]
    sums = re.findall(r"Tom has (\d+) apples and buys (\d+) more", prompt)
    if sums and prompt.endswith("A:"):  # gsm8k-cot's prompt: chain-of-thought answers
        a, b = map(int, sums[-1])
        return [f" {a} + {b} = {a + b}. The answer is {a + b}.", f" The answer is {a + b + 1}.",
                f" So {a + b}. The answer is {a + b}.", f" The answer is ${a + b}.", " I do not know.",
                f" {a} and {b} make {a + b}. The answer is {a + b}."][(h + repeat) % 6]
    if sums:
        a, b = map(int, sums[-1])
        return [f" {a} + {b} = {a + b}.\n#### {a + b}", f" The total is {a + b} apples.", f" #### {a + b + 1}",
                f" He has {a + b}", " I do not know.", f" #### {a + b}"][h]
    stem = next((q for q in sorted(ANSWERS, key=len, reverse=True) if q in prompt.lower().rsplit("\n\n", 1)[-1]), None)
    right = ANSWERS.get(stem or "", "nothing")
    return [f" {right}", f" {right.upper()}.", f" the {right}, I think", " nothing", f"  {right}\n", f" An {right}"][h]
